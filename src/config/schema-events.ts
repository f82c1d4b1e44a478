import { Type } from '@sinclair/typebox'
import { integer, oneOf, parsed } from './kinds'
import { duration, EVENT_TYPES, eventTypes, urlList, webhookSecret } from './parsers'

const { Optional } = Type

/** Lifecycle events and their webhooks (docs/contract.md §7). In README order; schema.ts joins the groups. */
export const EVENT_VARS = {
	EVENTS: oneOf(['auto', 'on', 'off'], {
		default: 'auto',
		description:
			'write lifecycle events (token.issued, download.completed, …) to the Redis Stream `<REDIS_KEY_PREFIX>events`; `auto` = `on` with Redis, `off` with the in-memory store',
	}),
	EVENTS_MAX_LEN: integer({
		default: 1_000_000,
		minimum: 1000,
		maximum: 1_000_000_000,
		description: 'the events stream is trimmed to about this many entries (`XADD … MAXLEN ~`)',
	}),
	WEBHOOK_URLS: Optional(
		parsed(urlList, {
			secret: true,
			description:
				'comma-separated endpoints every event of `WEBHOOK_EVENTS` is POSTed to, signed per Standard Webhooks',
		}),
	),
	WEBHOOK_SECRET: Optional(
		parsed(webhookSecret, {
			secret: true,
			description: '`whsec_<base64>` signing secret of the webhooks (Standard Webhooks); required with `WEBHOOK_URLS`',
		}),
	),
	WEBHOOK_EVENTS: parsed(eventTypes, {
		default: EVENT_TYPES.filter((t) => t !== 'download.denied').join(','),
		description: 'comma-separated event types delivered to `WEBHOOK_URLS`; by default every type but `download.denied`',
	}),
	WEBHOOK_TIMEOUT_S: integer({
		default: 10,
		minimum: 1,
		maximum: 60,
		description: 'seconds one delivery attempt may take before it counts as failed and is retried',
	}),
	WEBHOOK_MAX_AGE: parsed(duration, {
		default: '24h',
		description:
			'undelivered events are retried with exponential backoff until this old (`24h`, `90m`, seconds), then dead-lettered to `<REDIS_KEY_PREFIX>events:dead`',
	}),
}
