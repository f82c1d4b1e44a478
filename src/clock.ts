/** Milliseconds since the epoch; injected everywhere so expiry tests need no sleeps. */
export type Clock = () => number

/** Epoch seconds as an RFC 3339 UTC timestamp without fractions, e.g. `2026-11-24T10:15:00Z`. */
export const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')

/** The real wall clock. */
export const systemClock: Clock = () => Date.now()
