// Issue #19, items 7, 8 and 12 (web), at desktop and phone size:
// - a wrong password (or an unknown user) on the login page says the username or password is
//   wrong, in the page's one error style, and the message goes when the field is edited;
// - every page names its icon and the icon is served (no 404 for /favicon.ico);
// - an administrator without grants, while nodes are live, is told there are nodes but none is
//   granted, with the command that grants one; not "No nodes yet".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextAt, env, login, shot, withBrowser } from './lib.mjs';

for (const size of ['desktop', 'phone']) {
  test(`login errors, icons, empty states (${size})`, async () => {
    await withBrowser(`first-hour-${size}`, async (browser) => {
      const ctx = await contextAt(browser, size);
      const page = await ctx.newPage();

      await page.goto('/login');
      for (const [user, password] of [
        [env('USER_NAME'), 'not-the-password'],
        ['nobody-here', 'whatever-password'],
      ]) {
        await page.getByLabel('Username').fill(user);
        await page.getByLabel('Password').fill(password);
        await page.getByRole('button', { name: 'Log in' }).click();
        const alert = page.getByRole('alert').filter({ hasText: 'Wrong username or password.' });
        await alert.waitFor();
        assert.match(await alert.getAttribute('class'), /\bmsg-error\b/);
        assert.ok(!(await page.content()).includes('not logged in'));
        assert.equal(new URL(page.url()).pathname, '/login');
      }
      await shot(page, `19-7-login-wrong-${size}`);
      await page.getByLabel('Password').fill('x');
      await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor({ state: 'detached' });
      // Empty fields are refused in the same style, by the page.
      await page.getByLabel('Username').fill('');
      await page.getByLabel('Password').fill('');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Enter your username.' }).waitFor();
      assert.match(await page.getByRole('alert').filter({ hasText: 'Enter your username.' }).getAttribute('class'), /\bmsg-error\b/);
      await page.getByLabel('Username').fill(env('ADMIN_USER'));
      await page.getByRole('alert').filter({ hasText: 'Enter your username.' }).waitFor({ state: 'hidden' });

      await login(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
      for (const path of ['/login', '/', '/admin', '/activate', `/terminal/${env('NODE')}`]) {
        await page.goto(path);
        const href = await page.locator('link[rel=icon]').getAttribute('href');
        assert.ok(href, `${path} names an icon`);
        const icon = await page.request.get(href);
        assert.equal(icon.status(), 200, `${path}: ${href}`);
        assert.match(icon.headers()['content-type'], /^image\//);
      }

      // The admin owns no node and has no grant; bob's node is live.
      await page.goto('/');
      const empty = page.getByTestId('nodes-empty');
      await empty.filter({ hasText: 'none is granted to you' }).waitFor();
      assert.ok(!(await empty.textContent()).includes('No nodes yet'));
      assert.ok((await empty.textContent()).includes(`${env('NODE')} (${env('USER_NAME')}'s)`));
      assert.match(await page.getByTestId('grant-hint').textContent(), new RegExp(`^phirepass admin access grant --user ${env('ADMIN_USER')} --node [a-z0-9][a-z0-9_.-]*$`));
      await shot(page, `19-8-admin-no-grants-${size}`);
      await ctx.close();
    });
  });
}
