import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the app on :5173 and forwards the API to a Tern on
// :8025 (scripts/run); `npm run build` writes web/dist, which Tern embeds.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No data: URLs for assets: every file is a hashed, cacheable file.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/v1": "http://127.0.0.1:8025",
    },
  },
});
