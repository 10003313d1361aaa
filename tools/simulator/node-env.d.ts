// The simulator and its tests run under Node, not in workerd, so they need
// Node's type declarations; the project's tsconfig lists only Workers types.
/// <reference types="node" />
