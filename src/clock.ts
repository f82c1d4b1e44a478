/** Milliseconds since the epoch; injected everywhere so expiry tests need no sleeps. */
export type Clock = () => number

/** The real wall clock. */
export const systemClock: Clock = () => Date.now()
