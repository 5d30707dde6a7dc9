export const PROGRAM = 'image-batch';

const CONNECTION = `Connection:
  --server URL       The service (default: $IMAGE_BATCH_SERVER, else
                     http://127.0.0.1:$PORT with PORT defaulting to 8000)
  --token TOKEN      Bearer token for a service started with API_TOKEN
                     (default: $API_TOKEN; the variable keeps it out of 'ps')`;

const EXIT_CODES = `Exit codes:
  0    Done: the job completed with every image processed (submit --wait),
       the request was accepted (submit), the status was shown (status)
  1    The job FAILED, or the service could not be reached or answered with
       an error (unknown request id, refused token, server error)
  2    Usage error, or the service rejected the CSV or an option (the
       problems are listed by row and column)
  3    The job completed but some images failed (see the summary and the
       Errors column of the results CSV)
  130  Interrupted with Ctrl-C while waiting; the job goes on in the service`;

export const HELP: Record<'program' | 'serve' | 'submit' | 'status', string> = {
  program: `${PROGRAM}: compress product images in bulk with image-batch-service.

Usage:
  ${PROGRAM} serve [--port N] [--host ADDRESS]
  ${PROGRAM} submit <file.csv> [--wait] [options]
  ${PROGRAM} status <request-id> [--json]
  ${PROGRAM} help [command]

Commands:
  serve     Start the service (as 'npm start' does), configured by its
            environment variables
  submit    Upload a CSV of products and image URLs; with --wait, follow it
            with a progress bar and save the results CSV beside the input
  status    Show where a job is

Options:
  -h, --help     Show help; '${PROGRAM} <command> --help' for a command
  -V, --version  Print the version

${CONNECTION}

${EXIT_CODES}
`,

  serve: `Usage: ${PROGRAM} serve [--port N] [--host ADDRESS]

Starts the service in this process, exactly as 'npm start' does: every setting
comes from the environment (PORT, HOST, MONGODB_URI, API_TOKEN, ... see the
README's Configuration table). SIGTERM or Ctrl-C stops it gracefully.

Options:
  --port N          Listen on this port (sets PORT; default 8000)
  --host ADDRESS    Listen on this address (sets HOST; default 127.0.0.1,
                    0.0.0.0 to serve other machines)
  -h, --help        Show this help

Exit codes:
  0    Stopped by SIGTERM or SIGINT after a clean shutdown
  1    Could not start (for example, the port is taken) or shut down badly
  78   A setting is invalid (the message names the variable)
`,

  submit: `Usage: ${PROGRAM} submit <file.csv> [options]

Uploads a CSV (a header row, then serial number, product name and input image
URLs per row) and prints the request id. With --wait it follows the job to the
end, saves the results CSV and prints what was processed, what failed and how
many bytes were saved.

Options:
  --quality N       Output quality, 1-100 (the service's default is 50)
  --format F        Output format: jpeg (default), webp, avif or png
  --max-width N     Fit images inside this width, never enlarging
  --max-height N    Fit images inside this height, never enlarging
  --webhook URL     Called with a JSON body when the job completes
  --wait            Follow the job until it completes or fails
  --out FILE        Where --wait saves the results CSV (default:
                    <input-name>.results.csv beside the input)
  -h, --help        Show this help

${CONNECTION}

Progress goes to stderr: on a terminal a bar redrawn in place (images done of
the total, percent, images per second, time left); otherwise one line per
change, at most one every 2 seconds, and always the final state.

${EXIT_CODES}

Example:
  ${PROGRAM} submit products.csv --quality 60 --format webp --wait
`,

  status: `Usage: ${PROGRAM} status <request-id> [--json]

Shows a job's status: where it is, its image counts, the results link once it
has completed, and its webhook deliveries.

Options:
  --json            Print the service's JSON answer (GET /status/<request-id>)
  -h, --help        Show this help

${CONNECTION}

Exit codes:
  0    The status was shown, whatever the job's state
  1    No such request, or the service could not be reached or answered with
       an error
  2    Usage error, or not a request id
`,
};
