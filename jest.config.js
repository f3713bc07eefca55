/** Jest 30 in native ESM mode (run with NODE_OPTIONS=--experimental-vm-modules); swc compiles TypeScript. */
const swc = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
    target: 'es2022',
  },
  module: { type: 'es6' },
};

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Recipes (test/recipes) import the package by name, as an app does.
    '^nest-pg-session$': '<rootDir>/src/session/index.ts',
    '^nest-pg-session/testing$': '<rootDir>/src/session/testing/index.ts',
  },
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  setupFiles: ['<rootDir>/test/support/test-options.ts'],
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60_000,
  // Most files wait on PostgreSQL or child processes, so a third worker fills idle time on 2 cores.
  maxWorkers: 3,
};
