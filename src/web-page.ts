import { fileURLToPath } from 'node:url';

/**
 * Where `npm run build` puts the web page (web/ bundled by esbuild). The path is the same
 * from src/ (tsx) and dist/ (node), both one level below the project root.
 */
export const WEB_DIR = fileURLToPath(new URL('../dist/web/', import.meta.url));
