// Create a cluster from the portal: the "Create cluster" form provisions it with the local provider, the
// provision job's steps complete on the job page, and the cluster comes up in the topology graph.
// Parameters come from the environment (see test_portal_provision.py).
import { launch, login, report, screenshot, watchErrors } from "./browser.mjs";

const base = process.env.PORTAL_URL;
const result = { steps: [], errors: [] };
const { context, close } = await launch();
try {
  const page = await context.newPage();
  result.errors = watchErrors(page);
  await login(page, base, process.env.EMAIL, process.env.PASSWORD);
  await page.goto(`${base}/clusters`);
  await page.getByRole("button", { name: "Create cluster" }).click();
  await page.locator("#cc-name").fill("shop");
  await page.locator("#cc-replicas").fill("2");
  await page.locator("#cc-password").fill("portal-master-password");
  const asked = Date.now();
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await page.waitForURL(/\/clusters\/\d+\/jobs\/\d+/, { timeout: 20000 });
  result.steps.push({ name: "job_page", url: page.url() });
  await page.locator('li.step[data-step-state="ok"]').nth(6).waitFor({ timeout: 90000 });
  result.steps.push({
    name: "provisioned",
    seconds: (Date.now() - asked) / 1000,
    steps: await page.locator("li.step").evaluateAll((els) => els.map((e) => e.getAttribute("data-step-state"))),
  });
  result.screenshots = [await screenshot(page, "portal-provision-job")];
  const clusterUrl = page.url().replace(/\/jobs\/\d+.*$/, "");
  await page.goto(clusterUrl);
  await page.locator('svg.topology g.topo-node[data-status="up"]').nth(2).waitFor({ timeout: 30000 });
  result.steps.push({ name: "topology", primary: await page.locator("svg.topology").getAttribute("data-primary") });
  result.screenshots.push(await screenshot(page, "portal-provision-topology"));
  // Repair: rebuild a replica from its row in the servers table; the rebuild job's steps complete.
  await page.getByRole("button", { name: "Rebuild…" }).first().click();
  await page.getByRole("button", { name: "Rebuild", exact: true }).click();
  await page.waitForURL(/\/clusters\/\d+\/jobs\/\d+/, { timeout: 20000 });
  await page.locator('li.step[data-step-state="ok"]').nth(6).waitFor({ timeout: 90000 });
  result.steps.push({
    name: "rebuilt",
    title: await page.locator("section.panel h2", { hasText: "job #" }).first().textContent(),
    steps: await page.locator("li.step").evaluateAll((els) => els.map((e) => e.getAttribute("data-step-state"))),
  });
  result.screenshots.push(await screenshot(page, "portal-rebuild-job"));
} catch (exc) {
  result.failure = String(exc?.stack ?? exc);
} finally {
  await close();
}
report(result);
