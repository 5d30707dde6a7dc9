/**
 * `image-batch --help`, each command's help, `--version` and usage errors: the built binary
 * in a process of its own. The runs are independent, so they go at once.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cli, ensureBuilt, root } from '../helpers/cli.js';

t.before(ensureBuilt);

t.test('help for the program and for every command', async (t) => {
  const programHelp = [['--help'], ['-h'], ['help']];
  const commandHelp = ['serve', 'submit', 'status'].flatMap((command) => [
    [command, '--help'],
    ['help', command],
  ]);
  const runs = await Promise.all([...programHelp, ...commandHelp].map((args) => cli(args)));
  runs.slice(0, programHelp.length).forEach((run, i) => {
    const args = programHelp[i]?.join(' ') ?? '';
    t.equal(run.code, 0, `${args}: exit 0`);
    t.match(run.stdout, /^image-batch: compress product images/, args);
    t.match(run.stdout, 'Exit codes:', args);
  });
  runs.slice(programHelp.length).forEach((run, i) => {
    const args = commandHelp[i] ?? [];
    const command = args.find((word) => word !== 'help' && word !== '--help');
    t.equal(run.code, 0, `${args.join(' ')}: exit 0`);
    t.match(run.stdout, new RegExp(`^Usage: image-batch ${command} `), args.join(' '));
    t.equal(run.stderr, '', args.join(' '));
  });
});

t.test('the version is the package version, and the bin is the binary tested', async (t) => {
  const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as {
    version: string;
    bin: Record<string, string>;
  };
  t.equal(pkg.bin['image-batch'], 'dist/bin.cjs');
  const run = await cli(['--version']);
  t.equal(run.code, 0);
  t.equal(run.stdout, `image-batch ${pkg.version}\n`);
});

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const usage: Array<[string[], string]> = [
    [[], 'Usage:'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['submit'], 'submit takes one CSV file'],
    [['submit', 'a.csv', '--wat'], "Unknown option '--wat'"],
    [['submit', 'a.csv', '--out', 'x.csv'], '--out is where --wait saves the results'],
    [['submit', path.join(os.tmpdir(), `${randomUUID()}.csv`)], 'ENOENT'],
    [
      ['submit', path.join(root, 'package.json'), '--wait', '--out', '/nonexistent/x.csv'],
      'cannot save the results in /nonexistent: no such directory',
    ],
    [['status'], 'status takes one request id'],
    [['status', randomUUID(), '--server', 'ftp://x'], '--server must be an http or https URL'],
    [['serve', 'now'], 'serve takes no arguments'],
  ];
  const runs = await Promise.all(usage.map(([args]) => cli(args)));
  runs.forEach((run, i) => {
    const [args = [], message = ''] = usage[i] ?? [];
    t.equal(run.code, 2, `exit 2: ${args.join(' ')}`);
    t.match(run.stderr, message, args.join(' '));
  });
});
