// Issue #6 test 5 (browser half): the user enters the code the waiting
// `phirepass-agent login --device` printed, names the node, and sees it approved. The Rust
// harness checks that the agent then received its token and comes online.
import { test } from 'node:test';
import { context, env, shot, withBrowser } from './lib.mjs';

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
    await page.getByRole('status').filter({ hasText: `node “${env('DEVICE_NODE')}” was created` }).waitFor();
    await shot(page, '5-device-approved');
    // The node shows up on the nodes page once the agent starts with its new token.
    await page.goto('/');
    await page.locator(`tr[data-node="${env('DEVICE_NODE')}"]`).getByText('online').waitFor({ timeout: 30000 });
    await shot(page, '5-device-node-online');
  });
});
