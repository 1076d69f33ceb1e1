// Drives the real Jaeger UI (served by a Kelemetry node with --ui-dir) in Debian's
// headless Chromium: a search through the form, a result opened in
// `tracing [full tree]`, the Deployment span expanded and its logs read (a diff line
// and the delete's snapshot), the follow-limit warning, the mode digits switched in
// the URL. Every response the page gets must be a success.
//
// Usage: node jaeger-ui.mjs <query base URL> <cluster> <deployment> <screenshot dir>
// Prints a JSON summary; exits 1 with the reason (and screenshots) on failure.
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, cluster, deployment, shots] = process.argv.slice(2);
const require = createRequire(path.join(process.env.KELEMETRY_TOOLS, 'package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const bad = [];
page.on('response', (r) => {
  if (r.status() >= 400) bad.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
page.on('requestfailed', (r) => bad.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
let step = 0;
const shot = async (name) => page.screenshot({ path: path.join(shots, `${++step}-${name}.png`) });
const fail = async (why) => {
  await shot('failure');
  console.error(why);
  await browser.close();
  process.exit(1);
};

try {
  // 1. The search form: service, operation (the cluster), Find Traces.
  await page.goto(`${base}/search`);
  await page.waitForSelector('text=Service', { timeout: 20000 });
  const selects = page.locator('.ant-select');
  await selects.nth(0).click();
  await page.keyboard.type('tracing [full tree]');
  await page.keyboard.press('Enter');
  await selects.nth(1).click();
  await page.keyboard.type(cluster);
  await page.keyboard.press('Enter');
  // Only Deployments are search results; their ReplicaSets and Pods come by links.
  await page.getByPlaceholder(/status_code/).fill('resource=deployments');
  await shot('search-form');
  await page.getByRole('button', { name: 'Find Traces' }).click();
  const result = page.locator('a[href*="/trace/ff21"]', { hasText: `deployments: ${deployment} ` }).first();
  await result.waitFor({ timeout: 20000 });
  await shot('results');

  // 2. The result in tracing [full tree]; the Deployment span expanded.
  await result.click();
  await page.waitForSelector('.span-row', { timeout: 20000 });
  const traceUrl = page.url();
  const spans = await page.locator('.span-row').count();
  await page.locator('.span-name').first().click();
  await page.getByText(/Logs \(\d+\)/).first().waitFor({ timeout: 10000 });
  const more = page.getByText('show more...');
  if (await more.count()) await more.first().click();
  await shot('deployment-span');
  const warnings = page.getByText('Warnings', { exact: true }).first();
  if (await warnings.count()) {
    await warnings.click();
    await page.getByText('link following stopped at').first().waitFor({ timeout: 5000 }).catch(() => {});
  }
  const detail = await page.locator('body').innerText();
  if (process.env.KELEMETRY_UI_DEBUG) console.error(detail);
  const diff = detail.match(/diff\s*=\s*([^\n]*status\.observedGeneration[^\n]*)/);
  const snapshot = detail.match(/audit\s*=\s*[^\n]* delete[^\n]*?snapshot\s*=\s*(\{[^\n]*)/);
  const warning = detail.includes('link following stopped at');
  if (!diff) await fail('no diff log with status.observedGeneration on the Deployment span');
  if (!snapshot) await fail('no delete log with a snapshot on the Deployment span');
  if (!warning) await fail('the follow-limit warning is not shown');

  // 3. Other mode digits in the URL: tracing [ancestors] of the same search result.
  const ancestors = traceUrl.replace('/trace/ff21', '/trace/ff22');
  await page.goto(ancestors);
  await page.waitForSelector('.span-row', { timeout: 20000 });
  const ancestorSpans = await page.locator('.span-row').count();
  await shot('ancestors');
  const title = await page.locator('.TracePageHeader--titleRow, h1').first().innerText();
  if (!title.includes(`deployments: ${deployment}`)) await fail(`ancestors page title: ${title}`);

  if (bad.length) await fail(`unsuccessful responses:\n${bad.join('\n')}`);
  console.log(JSON.stringify({
    trace: traceUrl, spans, ancestors, ancestorSpans, diff: diff[1].slice(0, 200),
    snapshot: snapshot[1].slice(0, 80), warning,
  }));
  await browser.close();
} catch (e) {
  await fail(`${e}`);
}
