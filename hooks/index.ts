import type { RolloutHook } from '../lib/hook.ts';
import { elasticsearchHook } from './elasticsearch/index.ts';
import { kafkaHook } from './kafka/index.ts';
import { cassandraHook } from './cassandra/index.ts';
import { httpHook } from './http/index.ts';
import { manualHook } from './manual/index.ts';
import { noopHook } from './noop/index.ts';
import { patroniHook } from './patroni/index.ts';
import { pilotReadyHook } from './pilot-ready/index.ts';

/** Every hook, by name. Adding one: a folder with its file, and one line here. */
export const hooks: ReadonlyMap<string, RolloutHook> = new Map(
  [
    noopHook,
    httpHook,
    manualHook,
    pilotReadyHook,
    elasticsearchHook,
    patroniHook,
    kafkaHook,
    cassandraHook,
  ].map((h) => [h.name, h]),
);
