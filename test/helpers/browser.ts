import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import type { TapTest } from './service.js';

/** Debian's `chromium` package; `.ci/run` installs it. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Nothing the browser does may leave the machine. Playwright already turns off the
 * features that call home (Translate, OptimizationHints, MediaRouter, network time, …;
 * a second --disable-features here would replace its list, not add to it). On top: no
 * background services, and every host name but 127.0.0.1 resolves to nothing.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-pings',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

/**
 * Headless Chromium, closed when `t` ends; null (the caller skips) when it is not
 * installed, which fails `t` instead when REQUIRE_BROWSER=1 (CI sets it), as
 * scripts/test.sh does for a missing MongoDB under REQUIRE_MONGODB=1.
 */
export async function launchChromium(
  t: Pick<TapTest, 'fail' | 'plan' | 'teardown'>,
): Promise<Browser | null> {
  if (!existsSync(CHROMIUM_PATH)) {
    const reason = `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium)`;
    if (process.env.REQUIRE_BROWSER === '1') {
      t.fail(`REQUIRE_BROWSER=1 but ${reason}`);
    } else {
      t.plan(0, `browser tests SKIPPED: ${reason}`);
    }
    return null;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  t.teardown(() => browser.close());
  return browser;
}

/**
 * A fresh browser context (its own storage, so no token carries over) that records the
 * URL of every request its pages make, to show none of them leaves 127.0.0.1.
 */
export async function openContext(
  browser: Browser,
): Promise<{ context: BrowserContext; requests: URL[] }> {
  const context = await browser.newContext({
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    colorScheme: 'light',
  });
  const requests: URL[] = [];
  context.on('request', (request) => requests.push(new URL(request.url())));
  return { context, requests };
}

/** The requests that went anywhere but the loopback services (data: and blob: are local). */
export const offMachine = (requests: URL[]): string[] =>
  requests
    .filter((url) => !['data:', 'blob:'].includes(url.protocol) && url.hostname !== '127.0.0.1')
    .map((url) => url.href);
