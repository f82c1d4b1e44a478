import { Elysia } from 'elysia'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import type { Storage } from '../../storage/disk'
import type { TokenStore } from '../../store/types'
import { opsModel } from './model'

type Down = 'store' | 'storage' | 'draining'

export interface OpsModuleDeps {
	readonly store: TokenStore
	readonly storage: Storage
	readonly log: Logger
	/** True once SIGTERM arrived: readiness fails so balancers stop sending. */
	readonly draining: () => boolean
}

/** `/health` (liveness, no dependencies) and `/ready` (store and storage answer). */
export function opsModule(deps: OpsModuleDeps) {
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
}
