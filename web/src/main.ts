import { token } from './api.js';
import { byId } from './dom.js';
import { JobView } from './job-view.js';
import { RecentJobs } from './recent-jobs.js';
import { setUpUploadForm } from './upload-form.js';

const JOB_HASH = /^#job=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

const tokenPanel = byId<HTMLDetailsElement>('token-panel');
const tokenForm = byId<HTMLFormElement>('token-form');
const tokenInput = byId<HTMLInputElement>('token');
const tokenState = byId<HTMLParagraphElement>('token-state');

function askForToken(): void {
  tokenPanel.open = true;
  tokenState.textContent = 'This service needs an API token. Enter it and press Save.';
}

const job = new JobView({
  changed: (status) => recent.update(status),
  finished: () => void recent.load(),
  unauthorized: askForToken,
});
const recent = new RecentJobs(askForToken);

setUpUploadForm({
  accepted: (accepted) => {
    location.hash = `job=${accepted.request_id}`;
    void recent.load();
  },
  unauthorized: askForToken,
});

tokenInput.value = token.get();
tokenState.textContent = token.get() === '' ? 'No token saved.' : 'A token is saved.';
tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  token.set(tokenInput.value.trim());
  tokenState.textContent = token.get() === '' ? 'No token saved.' : 'Token saved.';
  void recent.load();
  if (job.current !== null) job.open(job.current, false);
});
byId<HTMLButtonElement>('token-forget').addEventListener('click', () => {
  token.set('');
  tokenInput.value = '';
  tokenState.textContent = 'Token forgotten.';
});

/** The job in the address (#job=<id>), so a job can be bookmarked, reloaded and gone back to. */
function route(focus: boolean): void {
  const id = JOB_HASH.exec(location.hash)?.[1] ?? null;
  if (id !== null && id !== job.current) job.open(id, focus);
  recent.select(id);
}
window.addEventListener('hashchange', () => route(true));
route(false);
void recent.load();
