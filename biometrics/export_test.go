package biometrics

// Test-only access for the external test package.
var KeyOf = keyOf

// LiveHeap is the heap in use after two collections (the memory benchmarks').
var LiveHeap = heapInUse
