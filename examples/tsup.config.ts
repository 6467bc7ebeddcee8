import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/demo.ts', 'src/server.ts', 'src/gateway.ts'],
  format: ['esm'],
  clean: true,
  sourcemap: true,
  target: 'node20',
});
