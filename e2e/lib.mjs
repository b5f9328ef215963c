// Shared helpers for the browser suites: a headless Chromium (Debian's package, driven by
// playwright-core), settings from the environment the Rust harness sets, and screenshots.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (the Rust harness cli/tests/web_ui_e2e.rs sets it)`);
  return v;
}

export const BASE = () => env('PHIREPASS_URL');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? 'target/e2e-artifacts';
mkdirSync(ARTIFACTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // CI runs as root in a container, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export async function context(browser, viewport = { width: 1280, height: 720 }) {
  const ctx = await browser.newContext({ viewport, baseURL: BASE() });
  ctx.setDefaultTimeout(15000);
  return ctx;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export async function login(page, username, password) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((u) => u.pathname !== '/login');
}

/// The visible text of the xterm screen (DOM renderer rows).
export async function screenText(page) {
  return page.locator('.xterm-rows').innerText();
}

export async function waitForScreen(page, re, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await screenText(page);
    if (re.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${re}; screen was:\n${text}`);
}

/// Runs `fn` with a fresh browser; on failure a screenshot of every open page is kept.
export async function withBrowser(name, fn) {
  const browser = await launch();
  try {
    await fn(browser);
  } catch (e) {
    let i = 0;
    for (const ctx of browser.contexts()) {
      for (const page of ctx.pages()) {
        await shot(page, `${name}-failure-${i++}`).catch(() => {});
      }
    }
    throw e;
  } finally {
    await browser.close();
  }
}
