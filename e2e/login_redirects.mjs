// Issue #14 finding 3: `next` after login never leaves the site. A prefix check let
// `/%5Cevil.example` (`/\evil.example`) and `/%09/evil.example` through: browsers read both as
// `//evil.example`. Each evil `next` ends on the dashboard's own origin; a good one still works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, context, env, withBrowser } from './lib.mjs';

// Raw query values, as a link would carry them.
const EVIL = [
  '/%5Cevil.example',
  '/%09/evil.example',
  '/%5C/evil.example',
  '//evil.example',
  '/%0A/evil.example',
  'javascript:alert(document.domain)',
  'https://evil.example/',
  'http:%2F%2Fevil.example',
];

/// Logs in on `/login?next=<raw>` in a fresh context and returns the URL the browser lands on.
async function landing(browser, raw) {
  const ctx = await context(browser);
  // Should the browser leave, it lands on a page we serve, instead of a DNS error.
  await ctx.route((url) => url.hostname.endsWith('evil.example'), (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>evil</h1>' }),
  );
  const page = await ctx.newPage();
  await page.goto(`/login?next=${raw}`);
  await page.getByLabel('Username').fill(env('USER_NAME'));
  await page.getByLabel('Password').fill(env('USER_PASSWORD'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((u) => u.pathname !== '/login' || u.host !== new URL(BASE()).host, {
    waitUntil: 'commit',
  });
  const landed = new URL(page.url());
  await ctx.close();
  return landed;
}

test('login: an evil next never leaves the site', async () => {
  await withBrowser('login-redirects', async (browser) => {
    const origin = new URL(BASE()).origin;
    for (const raw of EVIL) {
      const landed = await landing(browser, raw);
      assert.equal(landed.origin, origin, `next=${raw} left the site for ${landed.href}`);
      assert.equal(landed.pathname, '/', `next=${raw} should land on the home page`);
    }
    const good = await landing(browser, encodeURIComponent('/activate?code=ABCD-EFGH'));
    assert.equal(good.origin, origin);
    assert.equal(good.pathname + good.search, '/activate?code=ABCD-EFGH');
  });
});
