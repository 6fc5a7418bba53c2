package browsertest

// marketScenes is the realm's test scene with a transferable unique
// collection, a soulbound one and a fungible one.
const marketScenes = "../testdata"
