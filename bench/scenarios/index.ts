// Every scenario, in the order a full run takes them. A new scenario is one
// file beside this one and one line here.

import type { Scenario } from '../lib/scenario'
import { bucket64k } from './bucket-64k'
import { bucketSlowClients } from './bucket-slow-clients'
import { bucketThroughput1g } from './bucket-throughput-1g'
import { budgeted20mHeaders } from './budgeted-20m-headers'
import { download64k } from './download-64k'
import { download64kBudgeted } from './download-64k-budgeted'
import { eventsCost } from './events-cost'
import { issuance } from './issuance'
import { liveTokens } from './live-tokens'
import { policyCost } from './policy-cost'
import { refusals } from './refusals'
import { slotsCost } from './slots-cost'
import { slowClientsScenario } from './slow-clients'
import { throughput1g } from './throughput-1g'

export const SCENARIOS: readonly Scenario[] = [
	download64k,
	download64kBudgeted,
	issuance,
	refusals,
	throughput1g,
	slowClientsScenario,
	budgeted20mHeaders,
	liveTokens,
	eventsCost,
	policyCost,
	slotsCost,
	bucket64k,
	bucketThroughput1g,
	bucketSlowClients,
]
