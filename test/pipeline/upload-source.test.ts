import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ImageError } from '../../src/pipeline/image-error.js';
import {
  isUploadUrl,
  readUpload,
  uploadFile,
  uploadUrl,
} from '../../src/pipeline/upload-source.js';

const ID = '0b9c5f5e-8c1a-4e4f-9d3e-2f1a6b7c8d9e';
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uploads-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

t.test('an upload URL names the saved file of its job, and nothing else', async (t) => {
  t.equal(uploadUrl(ID), `upload:${ID}`);
  t.ok(isUploadUrl(uploadUrl(ID)));
  t.notOk(isUploadUrl(`https://img.test/${ID}`));
  t.equal(uploadFile(dir, ID), path.join(dir, ID));
  for (const id of ['../etc/passwd', `${ID}/../x`, ID.toUpperCase(), '', `${ID}.tmp`]) {
    t.throws(
      () => uploadFile(dir, id),
      new ImageError('refused', 'malformed upload reference'),
      id,
    );
  }
});

t.test('readUpload reads the saved bytes within the cap', async (t) => {
  await fs.writeFile(uploadFile(dir, ID), Buffer.alloc(100, 1));
  t.strictSame(await readUpload(dir, uploadUrl(ID), 100), Buffer.alloc(100, 1));
  await t.rejects(readUpload(dir, uploadUrl(ID), 99), {
    name: 'ImageError',
    kind: 'too_large',
    reason: 'image is 100 bytes, over the 99-byte limit',
  });
  await t.rejects(readUpload(dir, 'upload:../jobs.sqlite', 1000), {
    name: 'ImageError',
    kind: 'refused',
    reason: 'malformed upload reference',
  });
  await fs.rm(uploadFile(dir, ID));
  await t.rejects(readUpload(dir, uploadUrl(ID), 100), {
    name: 'ImageError',
    kind: 'storage',
    reason: 'the uploaded file is no longer stored',
  });
});
