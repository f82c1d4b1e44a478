import { Elysia, t } from 'elysia'
import { bearerToken } from '../../auth/caller'
import { hashSecrets, matchesOneOf } from '../../auth/constant-time'
import { UnauthorizedError } from '../../errors'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import type { Storage } from '../../storage/types'
import type { TokenStore } from '../../store/types'
import { METRICS_CONTENT_TYPE } from './metrics'
import { opsModel } from './model'

type Down = 'store' | 'storage' | 'draining'

export interface OpsModuleDeps {
	readonly store: TokenStore
	readonly storage: Storage
	readonly log: Logger
	/** True once SIGTERM arrived: readiness fails so balancers stop sending. */
	readonly draining: () => boolean
	/** The Prometheus text of the whole instance (every worker's metrics, aggregated). */
	readonly metricsText: () => Promise<string>
	/** When set, `/metrics` requires `Authorization: Bearer <it>`. */
	readonly metricsToken: string | null
}

/** `/health` (liveness, no dependencies), `/ready` (store and storage answer) and `/metrics` (Prometheus). */
export function opsModule(deps: OpsModuleDeps) {
	const metricsKeys = deps.metricsToken === null ? null : hashSecrets([deps.metricsToken])
	return new Elysia({ name: 'ops' })
		.get('/health', () => ({ status: 'ok' as const }), {
			...opsModel.health,
			detail: { tags: ['operations'], summary: 'Liveness', description: 'Answers without touching any dependency.' },
		})
		.get(
			'/ready',
			async ({ set, status }) => {
				const down: Down[] = []
				const [store, storage] = await Promise.allSettled([deps.store.ping(), deps.storage.check()])
				if (store.status === 'rejected') down.push('store')
				if (storage.status === 'rejected') {
					down.push('storage')
					deps.log.warn('storage not readable', errorFields(storage.reason))
				}
				if (deps.draining()) down.push('draining')
				set.headers['cache-control'] = 'no-store'
				if (down.length > 0) return status(503, { status: 'unavailable' as const, down })
				return { status: 'ready' as const }
			},
			{
				...opsModel.ready,
				detail: {
					tags: ['operations'],
					summary: 'Readiness',
					description: 'Ready when Redis answers and STORAGE_DIR is readable; not ready while draining after SIGTERM.',
				},
			},
		)
		.get(
			'/metrics',
			async ({ request }) => {
				if (metricsKeys !== null) {
					const presented = bearerToken(request.headers.get('authorization'))
					if (presented === null || !matchesOneOf(presented, metricsKeys))
						throw new UnauthorizedError('A valid metrics token is required (METRICS_TOKEN).')
				}
				return new Response(await deps.metricsText(), {
					headers: { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-store' },
				})
			},
			{
				response: {
					200: t.String({ description: 'Prometheus text exposition (version 0.0.4) of every worker' }),
					401: opsModel.metricsUnauthorized,
				},
				detail: {
					tags: ['operations'],
					summary: 'Prometheus metrics',
					description:
						'Counters, gauges and histograms named download_gate_*, for the whole instance: with WORKERS=N one scrape covers every worker. With METRICS_TOKEN set, send Authorization: Bearer <METRICS_TOKEN>.',
					security: deps.metricsToken === null ? [] : [{ metricsToken: [] }],
				},
			},
		)
}
