// A service instance reduced to its webhook worker, for the takeover test: it
// runs until killed. Its settings come as one JSON argument.
import { systemClock } from '../../../src/clock'
import { createLogger } from '../../../src/log'
import { createWebhookDelivery } from '../../../src/modules/events/webhooks'
import { createRedisClient, waitReady } from '../../../src/store/connect'
import { ALL_TYPES, WEBHOOK_SECRET } from './fixtures'

/** What the parent passes. */
export interface ChildWorkerSettings {
	readonly redisUrl: string
	readonly streamKey: string
	readonly deadLetterKey: string
	readonly endpoint: string
	readonly consumerName: string
	readonly timeoutMs: number
	readonly batchSize: number
}

const settings = JSON.parse(process.argv[2] ?? '{}') as ChildWorkerSettings
const redis = createRedisClient({ store: { kind: 'redis', url: settings.redisUrl } })
if (redis === null) throw new Error('no Redis client')
await waitReady(redis, 5000)
createWebhookDelivery({
	redis,
	streamKey: settings.streamKey,
	deadLetterKey: settings.deadLetterKey,
	endpoints: [settings.endpoint],
	secret: WEBHOOK_SECRET,
	eventTypes: new Set(ALL_TYPES),
	consumerName: settings.consumerName,
	log: createLogger('error'),
	clock: systemClock,
	timeoutMs: settings.timeoutMs,
	tuning: { batchSize: settings.batchSize, idlePollMs: 20 },
}).start()
process.stdout.write('started\n')
