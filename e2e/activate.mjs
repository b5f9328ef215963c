// Issue #6 test 5 (browser half): the user enters the code the waiting
// `phirepass-agent login --device` printed, reviews it, names the node, and sees it approved. The
// Rust harness checks that the agent then received its token and comes online.
// Issue #19 item 12: the node-name field's pattern is a valid regular expression in Chromium
// (an invalid one turns client-side checking off silently) and follows the server's rule, and
// the page says the agent saves its token (it does not start), at desktop and phone size.
// Issue #9 finding 5 (device-code phishing): `/activate?code=` shows kind, hostname, source
// address and time and approves nothing until the click; a code named after one of the user's
// nodes is refused unless "replace" is ticked; an admin's approval of a command line is
// read-only unless admin scope is ticked. These start their own codes from the page, as a
// stranger's agent or CLI would, and poll them with the secret device code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextAt, context, env, login, shot, withBrowser } from './lib.mjs';

/// A device code started over the gateway's API, as `phirepass-agent login --device` does.
async function startCode(page, kind, hostname) {
  const r = await page.evaluate(async ([kind, hostname]) => {
    const reply = await fetch('/api/device/start', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind, hostname }) });
    return { status: reply.status, body: await reply.json() };
  }, [kind, hostname]);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/// What the waiting device would hear now: pending, approved or expired.
async function pollState(page, deviceCode) {
  return page.evaluate(async (device_code) => {
    const reply = await fetch('/api/device/poll', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_code }) });
    return (await reply.json()).state;
  }, deviceCode);
}

/// The review card's value for one label (`Kind`, `Hostname`, `Source address`, `Requested`).
async function detail(page, label) {
  return page.locator('dl.details dt', { hasText: label }).locator('xpath=following-sibling::dd[1]').textContent();
}

test('device activation', async () => {
  await withBrowser('activate', async (browser) => {
    const page = await (await context(browser)).newPage();
    // Keyboard only: the username field has focus, Tab moves on, Enter submits.
    await page.goto('/activate');
    await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/activate');
    await page.getByLabel('Username').waitFor();
    await page.keyboard.type(env('USER_NAME'));
    await page.keyboard.press('Tab');
    await page.keyboard.type(env('USER_PASSWORD'));
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/activate');
    await page.getByRole('heading', { name: 'Activate a device' }).waitFor();
    await page.goto('/');
    await page.getByRole('link', { name: 'Activate a device' }).click();
    await page.waitForURL((u) => u.pathname === '/activate');
    // A wrong code is refused with one message.
    await page.getByLabel('Device code').fill('ZZZZ-ZZZZ');
    await page.getByRole('button', { name: 'Review request' }).click();
    await page.getByRole('alert').waitFor();
    // The right one shows what it asks for first.
    await page.getByLabel('Device code').fill(env('DEVICE_CODE'));
    await page.getByRole('button', { name: 'Review request' }).click();
    await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
    assert.match(await detail(page, 'Kind'), /Agent enrolment/);
    assert.equal(await detail(page, 'Source address'), '127.0.0.1');
    await page.getByLabel('Node name').fill(env('DEVICE_NODE'));
    await page.getByRole('button', { name: 'Approve' }).click();
    const approved = page.getByRole('status').filter({ hasText: `node “${env('DEVICE_NODE')}” was created` });
    await approved.waitFor();
    const said = await approved.textContent();
    assert.ok(said.includes('saves its token') && said.includes('phirepass-agent start'), said);
    assert.ok(!said.includes('starts'), said);
    await shot(page, '5-device-approved');
    // The node shows up on the nodes page once the agent starts with its new token.
    await page.goto('/');
    await page.locator(`tr[data-node="${env('DEVICE_NODE')}"]`).getByText('online').waitFor({ timeout: 30000 });
    await shot(page, '5-device-node-online');
  });
});

for (const size of ['desktop', 'phone']) {
  test(`activate: node names checked as the server checks them (${size})`, async () => {
    await withBrowser(`activate-names-${size}`, async (browser) => {
      const page = await (await contextAt(browser, size)).newPage();
      await login(page, env('USER_NAME'), env('USER_PASSWORD'));
      const code = await startCode(page, 'agent', `names-${size}`);
      await page.goto(`/activate?code=${code.user_code}`);
      const name = page.getByLabel('Node name');
      // authz: 1-63 of a-z, 0-9, '_', '.', '-', starting with a letter or digit.
      for (const [value, ok] of [['web-1', true], ['db_2.prod', true], ['Web-1', false], ['-web', false], ['bad name', false], ['a'.repeat(64), false]]) {
        await name.fill(value);
        const mismatch = await name.evaluate((el) => el.validity.patternMismatch);
        assert.equal(mismatch, !ok, `pattern on ${JSON.stringify(value)}`);
      }
      await name.fill('Bad Name');
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.getByRole('alert').filter({ hasText: 'A node name is 1-63 characters' }).waitFor();
      await shot(page, `19-12-activate-name-${size}`);
      await name.fill('good-name');
      await page.getByRole('alert').filter({ hasText: 'A node name is 1-63 characters' }).waitFor({ state: 'hidden' });
      assert.equal(await pollState(page, code.device_code), 'pending');
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.getByLabel('Device code').waitFor();
    });
  });
}

test('activate: a link shows the request and approves nothing until the click', async () => {
  await withBrowser('activate-link', async (browser) => {
    const page = await (await context(browser)).newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));
    const code = await startCode(page, 'agent', 'phish-box');
    await page.goto(`/activate?code=${code.user_code}`);
    await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
    assert.match(await detail(page, 'Kind'), /Agent enrolment/);
    assert.equal(await detail(page, 'Hostname'), 'phish-box');
    assert.equal(await detail(page, 'Source address'), '127.0.0.1');
    assert.match(await detail(page, 'Requested'), /^\d+ s ago$/);
    assert.equal(await page.getByLabel('Node name').inputValue(), 'phish-box');
    await shot(page, '9-5-activate-review');
    // Loading the link, and loading it again, approved nothing.
    await page.waitForTimeout(1500);
    assert.equal(await pollState(page, code.device_code), 'pending');
    await page.reload();
    await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
    assert.equal(await pollState(page, code.device_code), 'pending');
    // The click does.
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('status').filter({ hasText: 'node “phish-box” was created' }).waitFor();
    assert.equal(await pollState(page, code.device_code), 'approved');
  });
});

test('activate: a code named after an existing node replaces it only when ticked', async () => {
  await withBrowser('activate-replace', async (browser) => {
    const page = await (await context(browser)).newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));
    const node = env('NODE');
    const code = await startCode(page, 'agent', node);
    await page.goto(`/activate?code=${code.user_code}`);
    await page.getByText(`You already have a node named “${node}”`).waitFor();
    // Bob's node has a running agent: the choice says so, and it is not ticked.
    const replace = page.getByLabel(new RegExp(`^Replace existing node ${node} \\(online, last seen \\d+ s ago\\)$`));
    assert.equal(await replace.isChecked(), false);
    await shot(page, '9-5-activate-replace');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('alert').filter({ hasText: `already have a node named ${node}` }).waitFor();
    assert.equal(await pollState(page, code.device_code), 'pending');
    // Another name is a new node; nothing to replace is offered for it.
    await page.getByLabel('Node name').fill('not-web-1');
    await page.getByLabel('Node name').press('Tab');
    await replace.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await pollState(page, code.device_code), 'pending');
  });
});

test("activate: an admin's approval of a command line is read-only unless admin scope is ticked", async () => {
  await withBrowser('activate-cli', async (browser) => {
    const page = await (await context(browser)).newPage();
    await login(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    const code = await startCode(page, 'cli', 'admins-laptop');
    await page.goto(`/activate?code=${code.user_code}`);
    await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
    assert.match(await detail(page, 'Kind'), /Command-line login/);
    const admin = page.getByLabel('Also grant admin scope', { exact: false });
    assert.equal(await admin.isChecked(), false);
    await shot(page, '9-5-activate-cli');
    assert.equal(await pollState(page, code.device_code), 'pending');
    await page.getByRole('button', { name: 'Approve' }).click();
    const done = page.getByRole('status').filter({ hasText: 'receives its token' });
    await done.waitFor();
    assert.match(await done.textContent(), /scopes: read\)/);
    assert.equal(await pollState(page, code.device_code), 'approved');
  });
});
