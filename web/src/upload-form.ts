import { type Accepted, ApiError, type Problem, uploadCsv } from './api.js';
import { byId, h } from './dom.js';
import { formatBytes } from './format.js';

export interface UploadFormHandlers {
  accepted(job: Accepted): void;
  unauthorized(): void;
}

/** The new-job form: the CSV (picked, or dropped on the zone), the options, the errors. */
export function setUpUploadForm(on: UploadFormHandlers): void {
  const form = byId<HTMLFormElement>('upload-form');
  const zone = byId<HTMLLabelElement>('dropzone');
  const fileInput = byId<HTMLInputElement>('file');
  const fileName = byId<HTMLSpanElement>('file-name');
  const submit = byId<HTMLButtonElement>('upload-submit');
  const errors = byId<HTMLDivElement>('upload-errors');

  const showFile = () => {
    const file = fileInput.files?.[0];
    fileName.textContent = file ? `${file.name} (${formatBytes(file.size)})` : 'No file chosen';
    zone.classList.toggle('has-file', file !== undefined);
  };
  fileInput.addEventListener('change', showFile);

  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const files = event.dataTransfer?.files;
    if (!files || files.length === 0) return;
    const transfer = new DataTransfer();
    transfer.items.add(files[0] as File);
    fileInput.files = transfer.files;
    showFile();
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void send();
  });

  async function send(): Promise<void> {
    clearErrors();
    submit.disabled = true;
    submit.textContent = 'Uploading…';
    form.setAttribute('aria-busy', 'true');
    try {
      const job = await uploadCsv(new FormData(form));
      fileInput.value = '';
      showFile();
      on.accepted(job);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 401) on.unauthorized();
      showErrors(err);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Upload and process';
      form.removeAttribute('aria-busy');
    }
  }

  function clearErrors(): void {
    errors.hidden = true;
    errors.replaceChildren();
    for (const field of form.querySelectorAll('[aria-invalid]')) {
      field.removeAttribute('aria-invalid');
    }
  }

  function showErrors(err: ApiError): void {
    const heading = h('p', { class: 'errors-title' }, uploadFailure(err));
    errors.replaceChildren(heading);
    if (err.details.length > 0) {
      errors.append(h('ul', {}, ...err.details.map((problem) => h('li', {}, describe(problem)))));
    }
    if (err.details.some((problem) => problem.row !== null)) {
      errors.append(
        h('p', { class: 'hint' }, 'Rows are counted from the first line after the header.'),
      );
    }
    for (const problem of err.details) {
      if (problem.row !== null || problem.column === null) continue;
      const field = form.elements.namedItem(problem.column);
      if (field instanceof HTMLElement) field.setAttribute('aria-invalid', 'true');
    }
    errors.hidden = false;
  }
}

function uploadFailure(err: ApiError): string {
  switch (err.status) {
    case 0:
      return err.message;
    case 401:
      return 'The service needs an API token: enter it under "Access token" above.';
    case 413:
      return `The CSV is too large: ${err.message}`;
    case 503:
      return err.retryAfter === null
        ? `The service is busy: ${err.message}`
        : `The service is busy: ${err.message}. Try again in ${err.retryAfter} s.`;
    default:
      return `The upload was rejected: ${err.message}`;
  }
}

function describe(problem: Problem): string {
  if (problem.row === null) {
    return problem.column === null ? problem.message : `${problem.column}: ${problem.message}`;
  }
  const column = problem.column === null ? '' : `, column "${problem.column}"`;
  return `Row ${problem.row}${column}: ${problem.message}`;
}
