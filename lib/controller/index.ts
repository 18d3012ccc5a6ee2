export { Controller, type ControllerOptions } from './controller.ts';
export type { StatefulSetLookup } from './controller.ts';
