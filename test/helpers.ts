// Moved to test/support/helpers.ts (and pollUntil to test/support/poll.ts). This re-export stays
// only while cli.test.ts, e2e.test.ts, token-cache.test.ts, store-contract.ts and
// store-contract.test.ts (changed on another branch right now) import from here; new code imports
// ./support/helpers and ./support/poll. Delete it with those imports.
export * from './support/helpers'
export { pollUntil } from './support/poll'
