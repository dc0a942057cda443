import { defineConfig } from 'vitest/config';

// The suite runs twice: once on a SQLite file and once on PostgreSQL (own schema per test file).
const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks' as const,
};

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          ...shared,
          name: 'sqlite',
          include: ['test/**/*.test.{ts,tsx}'],
          env: { MAILPROOF_TEST_DB: 'sqlite' },
        },
      },
      {
        extends: true,
        test: {
          ...shared,
          name: 'postgres',
          include: ['test/**/*.test.{ts,tsx}'],
          exclude: ['test/browser/**'],
          env: { MAILPROOF_TEST_DB: 'postgres' },
        },
      },
    ],
  },
});
