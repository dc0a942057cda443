#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step. The project's own
// tsconfig is named explicitly, so JSX compiles for Preact whatever the working directory is.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli.ts');
