// Issue #6 tests 2 and 3: log in, see the node online, open its terminal (RequiresPassword
// dialog: a wrong password asks again, the right one connects), run `echo $((6*7))`, resize the
// window and watch `stty size` follow; then an admin in a second browser context kicks the
// session from the dashboard and the terminal says it ended, within 2 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, env, login, shot, waitForScreen, withBrowser } from './lib.mjs';

test('terminal, resize, password dialog, kick', async () => {
  await withBrowser('terminal', async (browser) => {
    const node = env('NODE');
    const page = await (await context(browser)).newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));
    const row = page.locator(`tr[data-node="${node}"]`);
    await row.getByText('online').waitFor();
    await shot(page, '2-nodes');
    await row.getByRole('link', { name: 'Open terminal' }).click();
    await page.waitForURL(`**/terminal/${node}`);

    // RequiresPassword: the dialog asks; a wrong password is refused and asked again.
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByLabel('Account on the node').fill(env('SSH_USER'));
    await dialog.getByLabel('Password').fill('not-the-password');
    await shot(page, '2-password-dialog');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await dialog.getByText(/wrong password/).waitFor({ timeout: 20000 });
    assert.equal(await dialog.getByLabel('Password').inputValue(), '', 'the password field is cleared');
    await dialog.getByLabel('Password').fill(env('SSH_PASSWORD'));
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await page.locator('#term-status').filter({ hasText: 'Connected' }).waitFor({ timeout: 20000 });
    // The password is not kept anywhere the page can read back.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(env('SSH_PASSWORD')), 'password must not be stored');

    await page.keyboard.type('echo $((6*7))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^42$/m);

    // Colours reach the screen as colours.
    await page.keyboard.type("printf '\\033[31mRED-%s\\033[0m\\n' ok");
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^RED-ok$/m);
    const red = await page.locator('.xterm-rows span.xterm-fg-1', { hasText: 'RED-ok' }).count();
    assert.ok(red > 0, 'RED-ok is drawn in ANSI red');

    // Paste goes through xterm (bracketed paste) like typing.
    await page.locator('.xterm-helper-textarea').evaluate((el) => {
      const data = new DataTransfer();
      data.setData('text/plain', 'echo pasted-$((40+2))');
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^pasted-42$/m);

    // A full-screen program: vim takes the alternate screen and gives it back.
    await page.keyboard.type('vim -u NONE -N');
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^~\s*$(\n^~\s*$){5,}/m);
    await shot(page, '2-terminal-vim');
    await page.keyboard.type(':q');
    await page.keyboard.press('Enter');
    // Back on the normal screen (the tildes are gone) before typing to the shell again.
    await page.waitForFunction(() => !/^~\s*$/m.test(document.querySelector('.xterm-rows')?.innerText ?? '~'));
    await waitForScreen(page, /pasted-42/);
    await page.keyboard.type('echo vim-done');
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^vim-done$/m);

    const sizeOf = () => page.locator('#terminal').getAttribute('data-size');
    const before = await sizeOf();
    await page.setViewportSize({ width: 900, height: 500 });
    await page.waitForFunction((b) => document.getElementById('terminal')?.dataset.size !== b, before);
    const [cols, rows] = (await sizeOf()).split('x');
    await page.keyboard.type('clear; stty size');
    await page.keyboard.press('Enter');
    await waitForScreen(page, new RegExp(`^${rows} ${cols}$`, 'm'));
    await shot(page, '2-terminal-resized');

    // Test 3: the admin's dashboard, in its own browser context, kicks this session.
    const admin = await (await context(browser)).newPage();
    admin.on('dialog', (d) => d.accept());
    await login(admin, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    await admin.goto('/admin');
    const session = admin.locator('[data-testid=sessions] tr[data-session]').filter({ hasText: node });
    await session.waitFor();
    await session.filter({ hasText: env('USER_NAME') }).waitFor();
    await shot(admin, '3-dashboard-session');
    const started = Date.now();
    await session.getByRole('button', { name: /Kick/ }).click();
    await page.locator('#term-notice').filter({ hasText: 'ended by an administrator' }).waitFor({ timeout: 5000 });
    const elapsed = Date.now() - started;
    console.log(`kick visible in the terminal after ${elapsed} ms`);
    assert.ok(elapsed <= 2000, `kick took ${elapsed} ms`);
    await page.getByRole('button', { name: 'Reconnect' }).waitFor();
    await shot(page, '3-terminal-kicked');
    await session.waitFor({ state: 'detached', timeout: 5000 });
    await shot(admin, '3-dashboard-after-kick');

    // Reconnect: the dialog asks again (the password was not kept), then a new session runs.
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('Account on the node').inputValue(), env('SSH_USER'));
    assert.equal(await dialog.getByLabel('Password').inputValue(), '');
    await dialog.getByLabel('Password').fill(env('SSH_PASSWORD'));
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await page.locator('#term-status').filter({ hasText: 'Connected' }).waitFor({ timeout: 20000 });
    await page.keyboard.type('echo again-$((1+1))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, /^again-2$/m);
  });
});
