// The main page's "Your tunnels" and a node's "Open port…": bob's `ssh -R` tunnel is listed
// online with its public link (opened in a new tab, it shows the tunnel's site), and the open-port
// control refuses a non-number, then leads through /api/apps/open and the app host's callback to
// the app the agent serves on an allowed port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, context, env, login, shot, withBrowser } from './lib.mjs';

test('your tunnels, open port', async () => {
  await withBrowser('tunnels', async (browser) => {
    const port = new URL(BASE()).port;
    const name = env('TUNNEL_NAME');
    const node = env('NODE');
    const ctx = await context(browser);
    const page = await ctx.newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));

    const section = page.getByRole('region', { name: 'Your tunnels' });
    const row = section.locator(`tr[data-tunnel="${name}"]`);
    await row.getByText('online', { exact: true }).waitFor({ timeout: 30000 });
    const link = row.getByRole('link');
    const url = `http://${name}.tunnel.localhost:${port}/`;
    assert.equal(await link.getAttribute('href'), url);
    assert.equal(await link.textContent(), url);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('rel'), /\bnoopener\b/);
    await shot(page, '6-tunnels');
    const [site] = await Promise.all([ctx.waitForEvent('page'), link.click()]);
    await site.waitForLoadState();
    assert.equal(site.url(), url);
    assert.equal((await site.locator('body').innerText()).trim(), env('TUNNEL_TEXT'));
    await site.close();

    // Open port…: a non-number (or out of range) is refused here, no tab opens.
    const card = page.locator(`tr[data-node="${node}"]`);
    await card.getByText('online', { exact: true }).waitFor();
    const input = card.getByLabel(`Port on ${node}`);
    const open = card.getByRole('button', { name: 'Open port…' });
    for (const bad of ['http', '70000', '0']) {
      await input.fill(bad);
      await open.click();
      await card.getByRole('alert').filter({ hasText: 'from 1 to 65535' }).waitFor();
      assert.equal(await input.getAttribute('aria-invalid'), 'true');
    }
    assert.equal(ctx.pages().length, 1, 'no tab opened for an invalid port');
    await shot(page, '6-open-port-refused');

    // A real port: the new tab goes /api/apps/open -> app host callback -> the app itself.
    await input.fill(env('APP_PORT'));
    const [app] = await Promise.all([ctx.waitForEvent('page'), open.click()]);
    await app.waitForURL(`http://${env('APP_PORT')}-${node}.apps.localhost:${port}/`);
    assert.equal((await app.locator('body').innerText()).trim(), env('APP_TEXT'));
    await shot(app, '6-app-port');
    assert.equal(await input.getAttribute('aria-invalid'), null);

    // Phone width: the section and the control are still there and usable.
    await page.setViewportSize({ width: 375, height: 740 });
    await row.getByRole('link').waitFor();
    await input.waitFor();
    await shot(page, '6-phone');
  });
});
