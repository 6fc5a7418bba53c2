package realm

import "github.com/zerorealm/zerorealm/internal/clustermsg"

// clusterAuth signs and checks the core NATS messages nodes exchange (see
// package clustermsg).
type clusterAuth = clustermsg.Auth

func newClusterAuth(recordKey []byte) (*clusterAuth, error) { return clustermsg.New(recordKey) }
