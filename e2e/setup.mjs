// Issue #6 test 1: first run. Every page leads to /setup; a wrong setup code is refused; the
// right one creates the admin, who lands on the dashboard logged in.
// Issue #19 item 7: every error of the setup form (the page's own checks and the server's) looks
// the same, sits under its field, and goes as soon as the field is fixed; at phone and desktop
// size. (That only the newest setup code works is tested in authz: first_run.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, contextAt, env, shot, withBrowser } from './lib.mjs';

/// The visible error messages: each is a .msg-error with the one error colour.
async function errors(page) {
  return page.locator('.msg-error:visible').evaluateAll((els) => els.map((e) => ({ text: e.textContent, color: getComputedStyle(e).color, cls: e.className })));
}

for (const size of ['phone', 'desktop']) {
  test(`setup form errors share one style and clear when fixed (${size})`, async () => {
    await withBrowser(`setup-errors-${size}`, async (browser) => {
      const page = await (await contextAt(browser, size)).newPage();
      await page.goto('/setup');
      const create = page.getByRole('button', { name: 'Create administrator' });
      await create.click();
      const empty = await errors(page);
      assert.deepEqual(
        empty.map((e) => e.text),
        ['Enter the setup code.', "A username is 1-32 characters of a-z, 0-9, '_', '.', '-'.", 'A password is 8 to 1024 characters long.'],
      );
      await page.getByLabel('Setup code').fill('WRONG-CODE-0000');
      await page.getByLabel('Admin username').fill('Root Admin');
      await page.getByLabel('Password', { exact: true }).fill('short');
      await page.getByLabel('Repeat password').fill('other');
      await create.click();
      const shown = await errors(page);
      assert.deepEqual(
        shown.map((e) => e.text),
        ["A username is 1-32 characters of a-z, 0-9, '_', '.', '-'.", 'A password is 8 to 1024 characters long.', 'The two passwords do not match.'],
      );
      assert.equal(new Set(shown.map((e) => e.color)).size, 1, 'one error colour');
      assert.equal(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid'), 'true');
      await shot(page, `19-7-setup-errors-${size}`);
      // Each goes when its field is right.
      await page.getByLabel('Admin username').fill(env('ADMIN_USER'));
      await page.getByLabel('Password', { exact: true }).fill(env('ADMIN_PASSWORD'));
      assert.deepEqual((await errors(page)).map((e) => e.text), ['The two passwords do not match.']);
      await page.getByLabel('Repeat password').fill(env('ADMIN_PASSWORD'));
      assert.deepEqual(await errors(page), []);
      // The server's refusal lands under the code, in the same style, and goes when it is edited.
      await create.click();
      const wrong = page.getByRole('alert').filter({ hasText: 'Wrong setup code.' });
      await wrong.waitFor();
      const [server] = await errors(page);
      assert.equal(server.color, shown[0].color);
      assert.equal(await page.getByLabel('Setup code').getAttribute('aria-invalid'), 'true');
      await shot(page, `19-7-setup-wrong-code-${size}`);
      await page.getByLabel('Setup code').fill('WRONG-CODE-0001');
      assert.deepEqual(await errors(page), []);
    });
  });
}

test('first run: setup code wrong then right', async () => {
  await withBrowser('setup', async (browser) => {
    const page = await (await context(browser)).newPage();
    for (const path of ['/', '/login', '/admin', '/terminal/x']) {
      await page.goto(path);
      assert.equal(new URL(page.url()).pathname, '/setup', `${path} must lead to /setup`);
    }
    const fill = async (code) => {
      await page.getByLabel('Setup code').fill(code);
      await page.getByLabel('Admin username').fill(env('ADMIN_USER'));
      await page.getByLabel('Password', { exact: true }).fill(env('ADMIN_PASSWORD'));
      await page.getByLabel('Repeat password').fill(env('ADMIN_PASSWORD'));
      await page.getByRole('button', { name: 'Create administrator' }).click();
    };
    await fill('WRONG-CODE-0000');
    await page.getByRole('alert').filter({ hasText: 'wrong setup code' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/setup');
    await shot(page, '1-setup-wrong-code');

    await fill(env('SETUP_CODE'));
    await page.waitForURL('**/admin');
    await page.getByTestId('whoami').filter({ hasText: env('ADMIN_USER') }).waitFor();
    await page.getByRole('heading', { name: 'Active sessions' }).waitFor();
    await shot(page, '1-setup-done-admin');

    // Set up for good: /setup now leads to login, and the code cannot be used again.
    await page.goto('/setup');
    assert.equal(new URL(page.url()).pathname, '/login');
    const again = await page.request.post('/api/setup', {
      data: { code: env('SETUP_CODE'), username: 'intruder', password: 'intruder-password' },
      headers: { origin: env('PHIREPASS_URL') },
    });
    assert.notEqual(again.status(), 200, 'a second setup must be refused');
  });
});
