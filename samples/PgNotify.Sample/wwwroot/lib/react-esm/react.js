// React 18's browser build (UMD) sets window.React; this module gives it to ES modules that `import … from 'react'`
// (the import map in react.html points 'react' here), so the page needs no bundler.
const React = globalThis.React;
if (!React) throw new Error('React is not loaded: run `npm ci` in samples/PgNotify.Sample/ClientApp and rebuild.');

export default React;
export const {
  Children, Component, Fragment, PureComponent, StrictMode, Suspense,
  cloneElement, createContext, createElement, createRef, forwardRef, isValidElement, lazy, memo, startTransition,
  useCallback, useContext, useDebugValue, useDeferredValue, useEffect, useId, useImperativeHandle, useInsertionEffect,
  useLayoutEffect, useMemo, useReducer, useRef, useState, useSyncExternalStore, useTransition, version,
} = React;
