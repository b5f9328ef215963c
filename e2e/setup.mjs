// Issue #6 test 1: first run. Every page leads to /setup; a wrong setup code is refused; the
// right one creates the admin, who lands on the dashboard logged in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, env, shot, withBrowser } from './lib.mjs';

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
