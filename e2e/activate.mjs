// Issue #6 test 5 (browser half): the user enters the code the waiting
// `phirepass-agent login --device` printed, names the node, and sees it approved. The Rust
// harness checks that the agent then received its token and comes online.
// Issue #19 item 12: the node-name field's pattern is a valid regular expression in Chromium
// (an invalid one turns client-side checking off silently) and follows the server's rule, and
// the page says the agent saves its token (it does not start), at desktop and phone size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextAt, context, env, login, shot, withBrowser } from './lib.mjs';

for (const size of ['desktop', 'phone']) {
  test(`activate: node names checked as the server checks them (${size})`, async () => {
    await withBrowser(`activate-names-${size}`, async (browser) => {
      const page = await (await contextAt(browser, size)).newPage();
      await login(page, env('USER_NAME'), env('USER_PASSWORD'));
      await page.goto('/activate');
      const name = page.getByLabel('Node name');
      // authz: 1-63 of a-z, 0-9, '_', '.', '-', starting with a letter or digit.
      for (const [value, ok] of [['web-1', true], ['db_2.prod', true], ['Web-1', false], ['-web', false], ['bad name', false], ['a'.repeat(64), false]]) {
        await name.fill(value);
        const mismatch = await name.evaluate((el) => el.validity.patternMismatch);
        assert.equal(mismatch, !ok, `pattern on ${JSON.stringify(value)}`);
      }
      await page.getByLabel('Device code').fill('ZZZZ-ZZZZ');
      await name.fill('Bad Name');
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.getByRole('alert').filter({ hasText: 'A node name is 1-63 characters' }).waitFor();
      await shot(page, `19-12-activate-name-${size}`);
      await name.fill('good-name');
      await page.getByRole('alert').filter({ hasText: 'A node name is 1-63 characters' }).waitFor({ state: 'hidden' });
    });
  });
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
    await page.getByLabel('Node name').fill(env('DEVICE_NODE'));
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('Device code').fill(env('DEVICE_CODE'));
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
