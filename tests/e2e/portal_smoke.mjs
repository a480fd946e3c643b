// Smoke test of the portal in Chromium: sign in through the UI, see the clusters list, open a cluster
// (live link up, topology drawn), sign out; a viewer sees no action buttons; a user of another tenant
// gets "Not found" for the cluster's URL. Parameters come from the environment (see test_portal_smoke.py).
import { launch, login, report, screenshot, watchErrors } from "./browser.mjs";

const base = process.env.PORTAL_URL;
const cluster = { id: process.env.CLUSTER_ID, name: process.env.CLUSTER_NAME };
const result = { steps: [], errors: [] };
const { context, close } = await launch();
try {
  const page = await context.newPage();
  result.errors = watchErrors(page);

  // Anonymous: the portal sends us to the login page.
  await page.goto(`${base}/`);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  result.steps.push({ name: "redirected_to_login", url: new URL(page.url()).pathname });

  // Wrong password: a readable message, no navigation.
  await page.getByLabel("Email").fill(process.env.ADMIN_EMAIL);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  result.steps.push({ name: "bad_password_message", text: (await alert.innerText()).trim() });
  // A failed login answers 400/401, which Chromium logs as a failed resource load: expected here, not a bug.
  result.errors.splice(0, result.errors.length, ...result.errors.filter((e) => !e.includes("/api/v1/auth/login/")));

  await login(page, base, process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
  const row = page.locator(`tr[data-cluster-id="${cluster.id}"]`);
  await row.waitFor();
  result.steps.push({ name: "clusters_list", rows: await page.locator("tr[data-cluster-id]").count(), row: (await row.innerText()).replace(/\s+/g, " ") });
  result.screenshots = [await screenshot(page, "portal-clusters")];

  // The cluster page: live link up (the websocket authenticated by the session cookie), one node per server.
  await row.getByRole("link", { name: cluster.name }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(cluster.name) }).waitFor();
  await page.locator(".live-indicator.live-open").waitFor();
  await page.locator("svg.topology g.topo-node").first().waitFor();
  result.steps.push({
    name: "cluster_page",
    nodes: await page.locator("svg.topology g.topo-node").count(),
    live: (await page.locator(".live-indicator").innerText()).trim(),
    actions: await page.getByRole("group", { name: "Cluster actions" }).getByRole("button").allInnerTexts(),
  });
  result.screenshots.push(await screenshot(page, "portal-cluster"));

  // Keyboard: the switchover dialog opens and closes with the keyboard and says what will happen.
  const switchover = page.getByRole("button", { name: "Switchover…" });
  if (await switchover.isEnabled()) {
    await switchover.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    result.steps.push({ name: "switchover_dialog", text: (await dialog.innerText()).slice(0, 400) });
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
  } else {
    result.steps.push({ name: "switchover_dialog", disabled_reason: await switchover.getAttribute("title") });
  }

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  result.steps.push({ name: "signed_out" });

  // A viewer of the same tenant: the cluster, but no action buttons.
  await login(page, base, process.env.VIEWER_EMAIL, process.env.VIEWER_PASSWORD);
  await page.goto(`${base}/clusters/${cluster.id}`);
  await page.locator("svg.topology g.topo-node").first().waitFor();
  result.steps.push({
    name: "viewer_cluster_page",
    action_buttons: await page.getByRole("group", { name: "Cluster actions" }).getByRole("button").count(),
    maintenance_buttons: await page.getByRole("button", { name: /Maintenance/ }).count(),
    note: (await page.getByText("view-only access").innerText()).trim(),
  });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();

  // A user of another tenant: the same URL is simply not found.
  await login(page, base, process.env.OTHER_EMAIL, process.env.OTHER_PASSWORD);
  await page.goto(`${base}/clusters/${cluster.id}`);
  await page.getByRole("heading", { name: "Not found" }).waitFor();
  result.steps.push({ name: "other_tenant_not_found", text: (await page.locator(".not-found").innerText()).replace(/\s+/g, " ") });
  result.screenshots.push(await screenshot(page, "portal-other-tenant"));
  // The cluster page's own fetch answers 404, which Chromium logs as a failed load: that is the point here.
  result.errors.splice(0, result.errors.length, ...result.errors.filter((e) => !e.includes(`/api/v1/clusters/${cluster.id}/`)));
} catch (exc) {
  result.failure = String(exc?.stack ?? exc);
} finally {
  await close();
}
report(result);
