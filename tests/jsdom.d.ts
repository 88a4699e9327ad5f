// The part of jsdom the docs test uses. @types/jsdom is not installed: it pulls the DOM's global types
// into every file of the project (its fetch types, for one, then reject Node's Buffer bodies).
declare module "jsdom" {
    export class JSDOM {
        constructor(html: string);
        readonly window: { close(): void };
    }
}
