// The web console in a real headless Chromium (Debian's, driven by
// playwright-core; scripts/services/chromium.sh installs both). Run by
// host/tests/all/console.rs, which starts `sluice serve` with the tenants
// and pipelines this script expects and passes them in the environment:
//
//   SLUICE_URL        the server
//   SLUICE_CHROMIUM   the browser binary (/usr/bin/chromium)
//   TOKEN_ACME        tenant acme's deploy token: pipelines `orders` (running,
//                     gen -> copy (plugin pass) -> out), `bad-input`
//                     (finished, with dead letters whose reason holds HTML)
//                     and `tagging` (finished, its `project` stage refused
//                     20 of 100 events: it sets `meta.tag`, and `meta` is a
//                     string in every fifth)
//   TOKEN_ZETA        tenant zeta's token: pipeline `zeta-secret`
//   OUT_DIR           where screenshots go
//
// Every check is an exact assertion; the first that fails ends the script
// with a non-zero status and the message on stderr. Each passed step prints
// `ok STEP` on stdout.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const url = process.env.SLUICE_URL;
const acme = process.env.TOKEN_ACME;
const zeta = process.env.TOKEN_ZETA;
const out = process.env.OUT_DIR;
const XSS = '<img src=x onerror=window.__pwned=1>';
for (const [k, v] of Object.entries({ url, acme, zeta, out })) assert.ok(v, `missing ${k}`);
fs.mkdirSync(out, { recursive: true });

// playwright-core gives each launch a fresh profile (--user-data-dir in a
// new temporary directory) and refuses the flag here.
const browser = await chromium.launch({
  executablePath: process.env.SLUICE_CHROMIUM || '/usr/bin/chromium',
  // Without the background-networking flags Chromium waits on services it
  // cannot reach on a closed network.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout: 60_000,
});

const problems = [];
const requests = [];

/** A fresh session (its own sessionStorage) watching for CSP reports and errors. */
async function session() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|404|400)/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  return { context, page };
}

const ok = (step) => console.log(`ok ${step}`);
const shot = (page, name) => page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
const texts = (page, selector) => page.locator(selector).allTextContents();

async function signIn(page, token) {
  await page.goto(`${url}/`);
  assert.equal(new URL(page.url()).pathname, '/console/', 'the root redirects to the console');
  await page.locator('#token').fill(token);
  await page.locator('#login button[type=submit]').click();
}

try {
  // --- a wrong token stays on the login view with its error ------------------
  {
    const { context, page } = await session();
    await signIn(page, 'sluice_wrong_token');
    await page.locator('#login-error:visible').waitFor();
    assert.equal(await page.locator('#login-error').textContent(), 'That token was not accepted.');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing kept');
    assert.equal(await page.locator('#top').isHidden(), true);
    await shot(page, '01-login-error');
    await context.close();
    ok('wrong token');
  }

  const { context, page } = await session();
  // --- acme signs in and sees its own pipelines only -------------------------
  await signIn(page, acme);
  await page.locator('#pipelines tbody tr').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#pipelines tbody tr').length === 3);
  const names = await page.locator('#pipelines tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.pipeline));
  assert.deepEqual(names.sort(), ['bad-input', 'orders', 'tagging']);
  assert.equal((await page.content()).includes('zeta-secret'), false, "zeta's pipeline is not shown");
  assert.equal(await page.locator('#who').textContent(), 'acme · deploy');
  // The token is in sessionStorage, and nowhere a URL or a cookie would carry it.
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.token')), acme);
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal((await context.cookies()).length, 0);
  // Live rates: a running pipeline at 40 events/s shows a positive rate.
  const orders = page.locator('#pipelines tr[data-pipeline="orders"]');
  await page.waitForFunction(() => {
    const cell = document.querySelector('#pipelines tr[data-pipeline="orders"] [data-rate="out"]');
    return cell && /^[0-9.,]+\/s$/.test(cell.textContent) && parseFloat(cell.textContent) > 0;
  }, null, { timeout: 30_000 });
  assert.equal(await orders.locator('[data-state]').textContent(), 'running');
  await shot(page, '02-pipelines');
  ok('pipelines list');

  // --- the pipeline page: DAG and per-component rates -------------------------
  await orders.locator('a').click();
  await page.locator('#dag g[data-node]').first().waitFor();
  const nodes = await page.locator('#dag g[data-node]').evaluateAll((g) => g.map((n) => `${n.dataset.role}:${n.dataset.node}`));
  assert.deepEqual(nodes, ['source:gen', 'stage:copy', 'sink:out']);
  const edges = await page.locator('#dag path.edge').evaluateAll((p) => p.map((e) => `${e.dataset.from}->${e.dataset.to}`));
  assert.deepEqual(edges, ['gen->copy', 'copy->out']);
  await page.waitForFunction(() => {
    const cell = document.querySelector('#components tr[data-component="copy"] [data-rate="out"]');
    return cell && parseFloat(cell.textContent) > 0;
  }, null, { timeout: 30_000 });
  const roles = await page.locator('#components tbody tr').evaluateAll((r) => r.map((x) => `${x.dataset.role}:${x.dataset.component}`));
  assert.deepEqual(roles.sort(), ['sink:out', 'source:gen', 'stage:copy']);
  assert.match(await page.locator('#dag g[data-node="copy"] text').nth(2).textContent(), /^[0-9,]+ out · [0-9.,]+\/s$/);
  await page.locator('#logs div').first().waitFor();
  // The last hour's chart (the test's server samples every 200 ms): a line
  // of output rates, and no lag for a datagen source.
  await page.locator('#chart-throughput path.series[data-series="out_per_s"]').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('#chart-throughput path[data-series="out_per_s"]').getAttribute('d'), /^M [0-9.]+ [0-9.]+( L [0-9.]+ [0-9.]+)+/);
  assert.equal(await page.locator('#chart-lag text.empty').textContent(), 'Not measured for this pipeline');
  await shot(page, '03-pipeline');
  ok('pipeline page');

  // --- the live tap: the stage's events, filtered, as text ---------------------
  await page.locator('#tap-component option[value="copy"]').waitFor({ state: 'attached' });
  await page.locator('#tap-component').selectOption('copy');
  await page.locator('#tap-filter').fill('id % 2 = 0');
  await page.locator('#tap-start').click();
  await page.locator('#tap-events .tap-event').nth(2).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#tap-note').textContent(), 'Tapping copy: at most 10 events/s.');
  for (const line of await texts(page, '#tap-events .tap-event')) {
    // `TIME key=ID {"id":ID,...}`: people with even ids, as text.
    const m = line.match(/^\S+ \S+ key=(\d+) (\{.*\})$/);
    assert.ok(m, `a tapped event: ${line}`);
    const value = JSON.parse(m[2]);
    assert.equal(String(value.id), m[1]);
    assert.equal(value.id % 2, 0, line);
  }
  assert.equal(await page.locator('#tap-component').isDisabled(), true);
  await shot(page, '03b-tap');
  await page.locator('#tap-stop').click();
  await page.waitForFunction(() => !document.querySelector('#tap-start').disabled);
  assert.equal(await page.locator('#tap-note').textContent(), 'Stopped.');
  // A filter that does not parse: the server's message, nothing tapped.
  await page.locator('#tap-filter').fill('id >');
  await page.locator('#tap-start').click();
  await page.waitForFunction(() => document.querySelector('#tap-note').textContent.startsWith('filter:'));
  assert.equal(await page.locator('#tap-note').textContent(), "filter: expected a value after '>' at column 5");
  assert.equal(await page.locator('#tap-events .tap-event').count(), 0);
  ok('live tap');

  // --- a dead letter whose reason is HTML is shown as text ---------------------
  await page.goto(`${url}/console/#/pipelines/bad-input`);
  await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 2);
  assert.equal(await page.locator('#dl-summary').textContent(), '2 shown');
  await page.locator('#dead-letters tbody tr').first().click();
  const reason = await page.locator('#dl-reason').textContent();
  assert.equal(reason, `malformed JSON at files/${XSS}.jsonl line 1: expected ident at line 1 column 2`);
  assert.equal(await page.locator('#view img').count(), 0, 'no element injected');
  assert.equal(await page.evaluate(() => document.querySelectorAll('img, b').length), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  const json = JSON.parse(await page.locator('#dl-json').textContent());
  assert.equal(json.value, 'not json 1');
  // The selection goes to the API: a filter that keeps the second letter only.
  await page.locator('#dl-filters input[name=filter]').fill("value == 'nope <b>3</b>'");
  await page.locator('#dl-filters button').click();
  await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 1);
  assert.deepEqual(await texts(page, '#dead-letters tbody td.reason'), [`malformed JSON at files/${XSS}.jsonl line 3: expected ident at line 1 column 2`]);
  await page.locator('#dl-filters input[name=filter]').fill('value ==');
  await page.locator('#dl-filters button').click();
  await page.locator('#dl-error:visible').waitFor();
  assert.match(await page.locator('#dl-error').textContent(), /^`filter`: /);
  await shot(page, '04-dead-letters');
  ok('dead letters');

  // --- plugins with their versions and users ---------------------------------
  await page.locator('a[data-nav=plugins]').click();
  await page.locator('#plugins tr[data-plugin="pass"]').waitFor();
  assert.deepEqual(await texts(page, '#plugins tr[data-plugin="pass"] td.used-by'), ['orders']);
  assert.match(await page.locator('#plugins tr[data-plugin="pass"] td').nth(1).textContent(), /^sha256:[0-9a-f]{12}$/);
  await shot(page, '05-plugins');
  ok('plugins');

  // --- deploy: a diagnostic at its line, then the fixed file ------------------
  const broken = [
    'name: fixed',
    'sources:',
    '  gen: {type: datagen, kind: people, rate: 5}',
    'stages:',
    '  copy: {plugin: nosuch, inputs: [gen]}',
    'sinks:',
    '  out: {type: file, path: fixed.jsonl, inputs: [copy]}',
  ].join('\n');
  await page.locator('a[data-nav=deploy]').click();
  await page.locator('#yaml').fill(broken);
  await page.locator('#validate').click();
  await page.locator('#diagnostics li').first().waitFor();
  const unknown = 'unknown plugin `nosuch`: upload it first (`sluice plugin push`, POST /v1/plugins?name=nosuch) or name a built-in plugin';
  assert.deepEqual(await texts(page, '#diagnostics li'), [`line 5, column 18: stages.copy.plugin: ${unknown}`]);
  assert.deepEqual(await page.locator('#source-view li.bad').evaluateAll((l) => l.map((x) => x.dataset.line)), ['5']);
  assert.equal(await page.locator('#source-view li.bad .t').textContent(), '  copy: {plugin: nosuch, inputs: [gen]}');
  assert.equal(await page.locator('#source-view li.problem').getAttribute('data-problem-line'), '5');
  await shot(page, '06-deploy-diagnostic');
  // Deploying it is refused the same way and creates nothing.
  await page.locator('#deploy').click();
  await page.locator('#deploy-error').waitFor();
  assert.equal(await page.locator('#deploy-error').textContent(), 'invalid pipeline; nothing was changed');
  await page.locator('#yaml').fill(broken.replace('plugin: nosuch', 'plugin: pass'));
  await page.locator('#validate').click();
  assert.equal(await page.locator('#valid').textContent(), 'Valid: fixed with 1 source(s), 1 stage(s), 1 sink(s).');
  await page.locator('#deploy').click();
  await page.locator('#flash').waitFor();
  assert.equal(await page.locator('#flash').textContent(), 'Deployed fixed (created).');
  await page.waitForFunction(() => document.querySelectorAll('#pipelines tbody tr').length === 4);
  const after = await page.locator('#pipelines tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.pipeline));
  assert.deepEqual(after.sort(), ['bad-input', 'fixed', 'orders', 'tagging']);
  await shot(page, '07-deployed');
  ok('deploy');

  // --- a fixed version deployed, the dead letters replayed once ----------------
  await page.goto(`${url}/console/#/pipelines/tagging`);
  await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 20);
  await page.locator('#dead-letters tbody tr').first().click();
  assert.equal(await page.locator('#dl-reason').textContent(), 'cannot set `meta.tag`: `meta` is a string, not an object');
  assert.deepEqual(JSON.parse(await page.locator('#dl-json').textContent()).value, { n: 0, meta: 'legacy' });
  const tagging = (field) => [
    'name: tagging',
    'checkpoint_interval_ms: 200',
    'sources:',
    '  in: {type: file, path: tags.jsonl}',
    'stages:',
    '  tag:',
    '    plugin: project',
    '    inputs: [in]',
    '    params:',
    '      set:',
    `        ${field}: "'x'"`,
    'sinks:',
    '  out: {type: file, path: tagged.jsonl, inputs: [tag]}',
  ].join('\n');
  await page.locator('a[data-nav=deploy]').click();
  await page.locator('#yaml').fill(tagging('tag'));
  await page.locator('#deploy').click();
  await page.locator('#flash').waitFor();
  assert.equal(await page.locator('#flash').textContent(), 'Deployed tagging (restarted).');
  await page.locator('#pipelines tr[data-pipeline="tagging"] a').click();
  await page.locator('h1 [data-state="finished"]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 20);
  await page.locator('#dl-replay').click();
  await page.locator('#dl-replayed:visible').waitFor();
  assert.equal(await page.locator('#dl-replayed').textContent(), 'Replay run 1: 20 delivered.');
  await page.waitForFunction(() => [...document.querySelectorAll('#dead-letters tbody tr td:nth-child(5)')]
    .filter((td) => td.textContent === 'delivered').length === 20);
  await shot(page, '08-replayed');
  // Pressed again: nothing is sent twice.
  await page.locator('#dl-replay').click();
  await page.waitForFunction(() => document.querySelector('#dl-replayed').textContent.startsWith('Nothing'));
  assert.equal(await page.locator('#dl-replayed').textContent(), 'Nothing to replay (20 already replayed before).');
  // Purge asks first; then the replayed letters are gone.
  await page.locator('#dl-purge').click();
  await page.locator('#dl-purge-confirm').click();
  await page.waitForFunction(() => document.querySelector('#dl-replayed').textContent.startsWith('Purged'));
  assert.equal(await page.locator('#dl-replayed').textContent(), 'Purged 20 dead letter(s); 0 kept.');
  await page.waitForFunction(() => document.querySelectorAll('#dead-letters tbody tr').length === 0);
  assert.equal(await page.locator('#dl-summary').textContent(), '0 shown');
  ok('replay');

  // --- the token never travelled in a URL --------------------------------------
  assert.ok(requests.length > 10);
  for (const r of requests) assert.equal(r.includes(acme), false, `token in a URL: ${r}`);
  await context.close();

  // --- a second tenant's session shows none of it -----------------------------
  {
    const { context: z, page: zp } = await session();
    await signIn(zp, zeta);
    await zp.locator('#pipelines tbody tr').first().waitFor();
    const mine = await zp.locator('#pipelines tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.pipeline));
    assert.deepEqual(mine, ['zeta-secret']);
    await zp.goto(`${url}/console/#/pipelines/orders`);
    await zp.locator('p.error:visible').first().waitFor();
    assert.equal(await zp.locator('p.error:visible').first().textContent(), 'no pipeline `orders`');
    await zp.locator('a[data-nav=plugins]').click();
    await zp.locator('#plugins').waitFor();
    assert.equal(await zp.locator('#plugins tbody tr').count(), 0);
    await shot(zp, '09-other-tenant');
    await z.close();
    ok('second tenant');
  }
  // No CSP violation and no script error anywhere on the way.
  assert.deepEqual(problems, []);
  ok('no console errors');
} finally {
  await browser.close();
}
