// Drives the EDK admin console in Debian's headless Chromium (playwright-core) the way an
// operator does: signs in through the operator authorization server and its upstream
// OpenID Provider (npm oidc-provider's login and consent pages), creates a tenant with the
// form, verifies the tenant's audit chain, suspends the tenant and opens the operators and
// health pages.
//
// Input (stdin, JSON): {console, login, tenant: {slug, display_name, host, port},
// screenshots (a directory, optional)}.
// Output (stdout, JSON): what each page showed, every console error and failed request.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const input = JSON.parse(readFileSync(0, "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.EDK_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const result = { errors: [], pages: {} };
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  // Only the console's own pages are judged; the upstream provider's are not ours.
  const onConsole = () => page.url().startsWith(input.console);
  page.on("console", (message) => {
    if (onConsole() && (message.type() === "error" || message.type() === "warning")) {
      result.errors.push(`${page.url()}: console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => {
    if (onConsole()) result.errors.push(`${page.url()}: ${error.message}`);
  });
  page.on("requestfailed", (request) => {
    if (request.url().startsWith(input.console)) {
      result.errors.push(`${request.url()}: request failed: ${request.failure()?.errorText}`);
    }
  });
  const shot = async (name) => {
    if (input.screenshots) {
      await page.screenshot({ path: join(input.screenshots, `${name}.png`), fullPage: true });
    }
  };
  const heading = async () => (await page.locator("h1").textContent())?.trim();

  await page.goto(input.console);
  result.pages.signed_out = await heading();
  await shot("sign-in");

  // Sign in: the console sends the browser to the operator authorization server, which
  // sends it to the upstream provider; log in there and consent until the console shows.
  await page.getByRole("link", { name: "Sign in" }).click();
  for (let step = 0; step < 6 && !onConsole(); step++) {
    await page.waitForLoadState();
    if (onConsole()) break;
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill(input.login);
      await page.locator('input[name="password"]').fill("any password");
    }
    await Promise.all([page.waitForNavigation(), page.locator('button[type="submit"]').first().click()]);
  }
  result.pages.after_sign_in = await heading();
  result.cookies = (await context.cookies()).map((cookie) => ({
    name: cookie.name,
    httpOnly: cookie.httpOnly,
    secure: cookie.secure,
    sameSite: cookie.sameSite,
    path: cookie.path,
  }));
  await shot("tenants");

  // Create a tenant with the form.
  await page.fill("#slug", input.tenant.slug);
  await page.fill("#display_name", input.tenant.display_name);
  await page.fill("#host", input.tenant.host);
  await page.fill("#port", String(input.tenant.port));
  await page.check('input[name="loopback_http"]');
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Create and onboard" }).click()]);
  result.pages.tenant = await heading();
  result.tenant_url = page.url();
  result.steps = await page.locator("table").nth(1).locator("tbody tr").evaluateAll((rows) =>
    rows.map((row) => [...row.querySelectorAll("td")].slice(0, 2).map((cell) => cell.textContent.trim())),
  );
  await shot("tenant");

  // The tenant's audit chain.
  await Promise.all([page.waitForNavigation(), page.getByRole("link", { name: "Audit events" }).click()]);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Verify the chain" }).click()]);
  result.audit_message = (await page.locator(".message").first().textContent())?.trim();
  result.audit_records = await page.locator("table tbody tr").count();
  await shot("audit");

  // Suspend it.
  await page.goto(result.tenant_url);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Suspend" }).click()]);
  result.status_after_suspend = (await page.locator(".facts tr").nth(2).locator("td").textContent())?.trim();

  await page.getByRole("link", { name: "Operators" }).click();
  await page.waitForLoadState();
  result.pages.operators = await heading();
  result.operators = await page.locator("table tbody tr td:first-child").allTextContents();
  await shot("operators");

  await page.getByRole("link", { name: "Health" }).click();
  await page.waitForLoadState();
  result.pages.health = await heading();
  await shot("health");

  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign out" }).click()]);
  result.pages.signed_out_again = await heading();
  await page.goto(input.console);
  result.pages.after_sign_out = await heading();
} catch (error) {
  result.failure = String(error?.stack ?? error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
