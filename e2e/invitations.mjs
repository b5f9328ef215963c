// Issue #6 test 4: an admin creates an invitation on the dashboard; the invitee joins with it,
// then logs in; the used link, an expired one and a revoked one are all refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, contextAt, env, login, shot, withBrowser } from './lib.mjs';

const refused = async (page, link) => {
  await page.goto(link);
  await page.getByRole('heading', { name: 'Invitation not usable' }).waitFor();
};

// Issue #19 item 12: the link has a Copy button, at desktop and phone size.
for (const size of ['desktop', 'phone']) {
  test(`invitation link: Copy puts it on the clipboard (${size})`, async () => {
    await withBrowser(`invitation-copy-${size}`, async (browser) => {
      const ctx = await contextAt(browser, size);
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write']);
      const admin = await ctx.newPage();
      await login(admin, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
      await admin.goto('/admin');
      await admin.getByRole('button', { name: 'Create invitation' }).click();
      const link = await admin.getByTestId('invite-link').inputValue();
      const copy = admin.getByRole('button', { name: 'Copy' });
      await copy.click();
      await admin.getByRole('button', { name: 'Copied' }).waitFor();
      assert.equal(await admin.evaluate(() => navigator.clipboard.readText()), link);
      await shot(admin, `19-12-invitation-copied-${size}`);
      // Not used by anyone: revoke it again.
      const pending = admin.locator('[data-testid=invitations] tr').filter({ hasText: 'pending' });
      await pending.first().getByRole('button', { name: 'Revoke' }).click();
      await admin.locator('[data-testid=invitations] tr').filter({ hasText: 'pending' }).waitFor({ state: 'detached' });
    });
  });
}

test('invitation: create, join, log in; used, expired and revoked codes refused', async () => {
  await withBrowser('invitations', async (browser) => {
    const admin = await (await context(browser)).newPage();
    await login(admin, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
    await admin.goto('/admin');
    await admin.getByRole('button', { name: 'Create invitation' }).click();
    const link = await admin.getByTestId('invite-link').inputValue();
    assert.match(link, /\/join\/[^/]+$/);
    await shot(admin, '4-invitation-created');

    const invitee = await (await context(browser, { width: 390, height: 844 })).newPage();
    await invitee.goto(link);
    await invitee.getByRole('heading', { name: 'Join Phirepass' }).waitFor();
    await invitee.getByLabel('Username').fill(env('USER_NAME'));
    await invitee.getByLabel('Password', { exact: true }).fill(env('USER_PASSWORD'));
    await invitee.getByLabel('Repeat password').fill(env('USER_PASSWORD'));
    await shot(invitee, '4-join-phone');
    await invitee.getByRole('button', { name: 'Create account' }).click();
    await invitee.waitForURL((u) => u.pathname === '/');
    await invitee.getByTestId('whoami').filter({ hasText: env('USER_NAME') }).waitFor();
    await invitee.getByRole('button', { name: 'Sign out' }).click();
    await invitee.waitForURL('**/login');
    await login(invitee, env('USER_NAME'), env('USER_PASSWORD'));
    await invitee.getByRole('heading', { name: 'Nodes' }).waitFor();
    // Not an admin: the dashboard API refuses them.
    const forbidden = await invitee.request.get('/api/admin/live');
    assert.equal(forbidden.status(), 403);

    const stranger = await (await context(browser)).newPage();
    await refused(stranger, link);
    await shot(stranger, '4-used-code-refused');

    // Expired: an invitation valid for one second.
    const short = await admin.request.post('/api/admin/invitations', { data: { ttl_secs: 1 } });
    assert.equal(short.status(), 200, await short.text());
    const { code } = await short.json();
    await admin.waitForTimeout(2500);
    await refused(stranger, `/join/${encodeURIComponent(code)}`);
    await shot(stranger, '4-expired-code-refused');

    // Revoked from the dashboard.
    await admin.reload();
    await admin.getByRole('button', { name: 'Create invitation' }).click();
    const revokedLink = await admin.getByTestId('invite-link').inputValue();
    const pending = admin.locator('[data-testid=invitations] tr').filter({ hasText: 'pending' });
    await pending.first().getByRole('button', { name: 'Revoke' }).click();
    await admin.locator('[data-testid=invitations] tr').filter({ hasText: 'revoked' }).first().waitFor();
    await admin.locator('[data-testid=invitations] tr').filter({ hasText: `used (${env('USER_NAME')})` }).waitFor();
    await shot(admin, '4-invitations-list');
    await refused(stranger, revokedLink);
  });
});
