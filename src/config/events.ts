import { ConfigError } from './error'
import type { EventType } from './parsers'
import type { EnvValues, EnvVar } from './schema'
import type { StoreConfig } from './store'

/** Lifecycle events in the Redis Stream (docs/contract.md §7). */
export interface EventsConfig {
	readonly enabled: boolean
	/** The stream is trimmed to about this many entries. */
	readonly maxLen: number
}

/** Signed webhooks delivering the events stream. */
export interface WebhooksConfig {
	readonly urls: readonly string[]
	readonly secret: string
	readonly events: readonly EventType[]
	readonly timeoutS: number
	readonly maxAgeS: number
}

/** Settings that mean something only with `WEBHOOK_URLS`. */
const WEBHOOK_ONLY: readonly EnvVar[] = ['WEBHOOK_SECRET', 'WEBHOOK_EVENTS', 'WEBHOOK_TIMEOUT_S', 'WEBHOOK_MAX_AGE']

/** `EVENTS` resolved against the store, and the webhooks with what they need. */
export function eventsConfig(
	v: EnvValues,
	given: ReadonlySet<EnvVar>,
	store: StoreConfig,
): { events: EventsConfig; webhooks: WebhooksConfig | null } {
	if (v.EVENTS === 'on' && store.kind === 'memory')
		throw new ConfigError('EVENTS', 'needs Redis: events are a Redis Stream, and the in-memory store has none')
	const enabled = v.EVENTS === 'auto' ? store.kind !== 'memory' : v.EVENTS === 'on'
	if (!enabled && given.has('EVENTS_MAX_LEN'))
		throw new ConfigError('EVENTS_MAX_LEN', 'only applies when events are written (EVENTS, with Redis)')
	const events = { enabled, maxLen: v.EVENTS_MAX_LEN }
	if (v.WEBHOOK_URLS === undefined) {
		for (const name of WEBHOOK_ONLY)
			if (given.has(name)) throw new ConfigError(name, 'only applies with WEBHOOK_URLS, which is not set')
		return { events, webhooks: null }
	}
	if (!enabled)
		throw new ConfigError('WEBHOOK_URLS', 'needs events (EVENTS on, and Redis): webhooks deliver the events stream')
	if (v.WEBHOOK_SECRET === undefined) throw new ConfigError('WEBHOOK_SECRET', 'is required with WEBHOOK_URLS')
	if (v.WEBHOOK_MAX_AGE < 60) throw new ConfigError('WEBHOOK_MAX_AGE', 'must be at least one minute (60)')
	return {
		events,
		webhooks: {
			urls: v.WEBHOOK_URLS,
			secret: v.WEBHOOK_SECRET,
			events: v.WEBHOOK_EVENTS,
			timeoutS: v.WEBHOOK_TIMEOUT_S,
			maxAgeS: v.WEBHOOK_MAX_AGE,
		},
	}
}
