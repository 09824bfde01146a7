// React DOM 18's browser build (UMD) sets window.ReactDOM; this module is 'react-dom/client' for ES modules.
const ReactDOM = globalThis.ReactDOM;
if (!ReactDOM) throw new Error('React DOM is not loaded: run `npm ci` in samples/PgNotify.Sample/ClientApp and rebuild.');

export const { createRoot, hydrateRoot } = ReactDOM;
