/// <reference types="vitest" />
// Builds the portal into Django's static files: controlplane/static/portal/ with a manifest that
// controlplane/portal.py reads to write the <script>/<link> tags. Everything is bundled (no CDN).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const DJANGO = process.env.DBPILOT_DEV_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  base: "/static/portal/",
  build: {
    outDir: "../controlplane/static/portal",
    emptyOutDir: true,
    manifest: "manifest.json",
    sourcemap: false,
    rollupOptions: { input: "src/main.tsx" },
  },
  // `npm run dev`: Vite serves index.html and proxies the API and websockets to a local Django.
  server: {
    proxy: {
      "/api": DJANGO,
      "/ws": { target: DJANGO.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
