// The `nest-pg-session/testing` entry: helpers for an app's own e2e tests. Kept out of the main
// entry so that nothing an app imports for production can log a user in without a password.
export { createTestSession, type TestSession, type TestSessionOptions } from './test-session.js';
