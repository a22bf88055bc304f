// The staff inbox in a real browser: Debian's Chromium, headless, driven by
// playwright-core against a running `wagate dev`. A receptionist's whole
// guest conversation: log in, see a guest's message arrive live (a signed
// Meta webhook), answer it and watch the ticks reach "read", find free
// text refused once the guest's window has closed and send a template
// instead, see the guest's photo, assign the conversation to a colleague
// who then finds it under "mine", resolve it. Screenshots of the main
// views go to $SHOTS.
//
// Run by cmd/wagate's TestInboxInARealBrowser, which starts the gateway and
// passes: BASE (http://host:port of the API), SIM (the simulator), TENANT,
// APP_SECRET (Meta's app secret of dev), PHONE_NUMBER_ID and SENDER (the
// demo number), SHOTS (a folder, may be empty).
import { createHmac, randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (v === undefined) throw new Error('missing env ' + k);
  return v;
};
const BASE = env('BASE');
const TENANT = env('TENANT');
const SECRET = env('APP_SECRET');
const PNID = env('PHONE_NUMBER_ID');
const SENDER = env('SENDER');
const SIM = env('SIM');
const SHOTS = process.env.SHOTS || '';
// PHOTO is a guest's photo: a 64×48 PNG, in base64.
const PHOTO = 'iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAAZUlEQVR4nO3PQQ0AIBDAsFOCJpTg/4kIHg3JkgnoZp39dcMFDWhBA1rQgBY0oAUNaEEDWtCAFjSgBQ1oQQNa0IAWNKAFDWhBA1rQgBY0oAUNaEEDWtCAFjSgBQ1oQQNa0IAWPHYBO5BQl1xFXVsAAAAASUVORK5CYII=';
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const guest = '+1415' + String(randomInt(1000000, 9999999));
const lateGuest = '+1416' + String(randomInt(1000000, 9999999));
let wamidN = 0;

function step(what) { console.log('step: ' + what); }

// postWebhook posts Meta's webhook for one message, signed as Meta signs.
async function postWebhook(from, message, name) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '200000000000001', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: SENDER.slice(1), phone_number_id: PNID },
      contacts: [{ profile: { name }, wa_id: from.slice(1) }],
      messages: [{ from: from.slice(1), id: 'wamid.e2e.' + Date.now() + '.' + (++wamidN), ...message }],
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');
  const r = await fetch(BASE + '/webhooks/meta', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig }, body });
  if (r.status !== 200) throw new Error('webhook answered ' + r.status + ': ' + await r.text());
}

const nowSec = () => String(Math.floor(Date.now() / 1000));

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: SHOTS + '/inbox-' + name + '.png' });
}

async function login(page, user) {
  await page.goto(BASE + '/inbox');
  await page.getByLabel('Hotel (tenant)').fill(TENANT);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill('dev-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.locator('#live.on').waitFor({ timeout: 15000 });
}

function item(page, phone) {
  return page.locator('#conversations li', { hasText: phone });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
let failed = false;
const pages = [];
try {
  const alice = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  alice.on('pageerror', (e) => { console.error('page error: ' + e.message); failed = true; });
  pages.push(alice);

  step('alice logs in');
  await login(alice, 'alice');
  await alice.getByRole('tab', { name: 'All' }).click();

  step('a guest writes: the conversation appears live');
  // Through the simulator, as Meta would post it: the simulator then
  // knows the message that read receipts name.
  const first = await fetch(SIM + '/_sim/inbound', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ phone_number_id: PNID, from: guest, name: 'Maria Lopez', text: 'Hi! Could I get two extra towels in room 412?' }) });
  if (first.status !== 200) throw new Error('the simulator refused the message: ' + first.status + ' ' + await first.text());
  const firstID = (await first.json()).id;
  await item(alice, 'Maria Lopez').waitFor({ timeout: 15000 });
  await item(alice, 'Maria Lopez').locator('.unread').waitFor();
  await shot(alice, 'list');

  step('alice opens it and answers');
  await item(alice, 'Maria Lopez').click();
  await alice.locator('#messages li.in', { hasText: 'extra towels' }).waitFor();
  await alice.getByLabel('Message', { exact: true }).fill('Of course! Housekeeping is on the way with two towels.');
  step('opening it sent Meta a read receipt, writing a typing indicator');
  const receipts = async () => (await (await fetch(SIM + '/_sim/receipts?phone_number_id=' + PNID)).json());
  for (let i = 0; ; i++) {
    const rs = await receipts();
    if (rs.some((r) => r.message_id === firstID && !r.typing_indicator) && rs.some((r) => r.message_id === firstID && r.typing_indicator)) break;
    if (i === 100) throw new Error('receipts at the simulator: ' + JSON.stringify(rs) + ', want a read receipt and a typing indicator for ' + firstID);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  await alice.getByRole('button', { name: 'Send', exact: true }).click();
  const answer = alice.locator('#messages li.out', { hasText: 'Housekeeping is on the way' });
  await answer.waitFor();

  step('the ticks go to read');
  await alice.locator('#messages li.out[data-status=read]', { hasText: 'Housekeeping is on the way' }).waitFor({ timeout: 30000 });

  step("the guest's photo");
  // Through the simulator, which holds the file as Meta does, for the
  // gateway to download with the number's token.
  const r = await fetch(SIM + '/_sim/inbound', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ phone_number_id: PNID, from: guest, name: 'Maria Lopez', type: 'image', mime_type: 'image/png',
      text: 'The towels I mean', data: PHOTO }) });
  if (r.status !== 200) throw new Error('the simulator refused the photo: ' + r.status + ' ' + await r.text());
  await alice.locator('#messages li.in', { hasText: 'The towels I mean' }).waitFor({ timeout: 15000 });
  await alice.locator('#messages li.in img').waitFor({ timeout: 30000 });
  const natural = await alice.locator('#messages li.in img').first().evaluate((img) => img.complete && img.naturalWidth);
  if (!natural) throw new Error('the photo does not load');
  await shot(alice, 'conversation');

  step('alice sends a photo back, and a question with quick replies');
  await alice.locator('#file').setInputFiles({ name: 'towels.png', mimeType: 'image/png', buffer: Buffer.from(PHOTO, 'base64') });
  await alice.getByLabel('Message', { exact: true }).fill('These ones?');
  await alice.getByRole('button', { name: 'Send', exact: true }).click();
  await alice.locator('#messages li.out img').waitFor({ timeout: 15000 });
  await alice.getByRole('button', { name: 'Quick replies…' }).click();
  await alice.getByLabel('Message', { exact: true }).fill('Anything else for your stay?');
  await alice.getByLabel('Reply 1').fill('Late checkout');
  await alice.getByLabel('Reply 2').fill('No, thanks');
  await alice.getByRole('button', { name: 'Send', exact: true }).click();
  await alice.locator('#messages li.out', { hasText: 'Anything else for your stay?' }).waitFor({ timeout: 15000 });

  step('a guest whose window has closed: free text is refused, a template goes');
  const dayAgo = String(Math.floor(Date.now() / 1000) - 25 * 3600);
  await postWebhook(lateGuest, { timestamp: dayAgo, type: 'text', text: { body: 'Is the pool open tomorrow?' } }, 'Tom Becker');
  await item(alice, 'Tom Becker').waitFor({ timeout: 15000 });
  await item(alice, 'Tom Becker').click();
  await alice.locator('#window', { hasText: 'Window closed' }).waitFor();
  if (await alice.locator('#composer').isVisible()) throw new Error('the free-text composer shows with the window closed');
  const refused = await alice.evaluate(async ([phone, from]) => {
    const me = await (await fetch('/api/v1/whatsapp/auth/me')).json();
    const r = await fetch('/api/v1/whatsapp/messages/send', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
      body: JSON.stringify({ guest_phone: phone, from, message_type: 'text', content: { text: 'Yes, from 7 am.' } }) });
    return [r.status, (await r.json()).error.code];
  }, [lateGuest, SENDER]);
  if (refused[0] !== 403 || refused[1] !== 'MESSAGE_WINDOW_EXPIRED') throw new Error('free text after the window: ' + refused);
  await alice.locator('#template-form').waitFor({ state: 'visible' });
  const templates = await alice.locator('#template option').allTextContents();
  if (templates.length === 0) throw new Error('no template to pick');
  for (const input of await alice.locator('#template-params input[required]').all()) {
    await input.fill((await input.getAttribute('placeholder')) || 'x');
  }
  await shot(alice, 'template');
  await alice.getByRole('button', { name: 'Send template' }).click();
  await alice.locator('#messages li.out', { hasText: 'Template' }).waitFor({ timeout: 15000 });

  step('alice assigns Maria to bruno, who finds it under "mine"');
  await item(alice, 'Maria Lopez').click();
  await alice.locator('#messages li.in', { hasText: 'extra towels' }).waitFor();
  const brunoOption = alice.locator('#assign option', { hasText: 'Bruno' });
  await alice.locator('#assign').selectOption(await brunoOption.getAttribute('value'));
  await alice.locator('#notice', { hasText: 'Assigned to Bruno' }).waitFor({ timeout: 15000 });

  const bruno = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  bruno.on('pageerror', (e) => { console.error('page error: ' + e.message); failed = true; });
  pages.push(bruno);
  await login(bruno, 'bruno');
  await bruno.getByRole('tab', { name: 'Mine' }).click();
  await item(bruno, 'Maria Lopez').waitFor({ timeout: 15000 });
  await shot(bruno, 'phone-mine');

  step('bruno resolves it');
  await item(bruno, 'Maria Lopez').click();
  await bruno.getByRole('button', { name: 'Resolve' }).click();
  await bruno.getByLabel('Notes').fill('Towels delivered to room 412.');
  await bruno.getByLabel("Guest's rating").selectOption('5');
  await bruno.locator('#resolve-form').getByRole('button', { name: 'Resolve' }).click();
  await bruno.locator('#conv-status', { hasText: 'archived' }).waitFor({ timeout: 15000 });
  await bruno.locator('#conv-info', { hasText: 'Towels delivered' }).waitFor();
  if (failed) throw new Error('the page threw errors');
  console.log('ok: the whole conversation went through');
} catch (e) {
  console.error('FAILED: ' + (e && e.stack || e));
  for (const p of pages) {
    console.error('page ' + p.url() + ': error line: ' + await p.locator('#send-error').textContent().catch(() => '?'));
    console.error('  messages: ' + (await p.locator('#messages li').allTextContents().catch(() => [])).join(' | '));
    if (process.env.FAIL_SHOT) await p.screenshot({ path: process.env.FAIL_SHOT + '-' + pages.indexOf(p) + '.png' }).catch(() => {});
  }
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
