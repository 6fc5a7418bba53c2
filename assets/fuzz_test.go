package assets

import (
	"testing"
)

var intentSeeds = []string{
	`{"intent":{"collection":"credits","assetId":"","amount":"250","from":"0x00000000000000000000000000000000000A11cE","to":"0x0000000000000000000000000000000000000b0b","nonce":"7","deadline":"1900000000"},"signature":"0x` + "11" + `"}`,
	`{"intent":{"collection":"badges","assetId":"first-shift","amount":1,"from":"0x00000000000000000000000000000000000a11ce","to":"0x0000000000000000000000000000000000000b0b","nonce":0,"deadline":1},"domain":{"name":"ZeroRealm","version":"1","chainId":23122,"verifyingContract":"0x5A52000000000000000000000000000000000712"}}`,
	`{"intent":{"collection":"credits","amount":"99999999999999999999999999","from":"0x0","to":"0x1"}}`,
	`{"intent":{"collection":"Credits","amount":"-1"}}`,
	`{"intent":{}, "extra": 1}`,
	`[]`,
	``,
}

// FuzzDecodeTransferRequest: any bytes give a transfer intent or a
// RejectError, never a panic, and a decoded intent is in range.
func FuzzDecodeTransferRequest(f *testing.F) {
	for _, s := range intentSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeTransferRequest(data)
		if err != nil {
			if _, ok := err.(*RejectError); !ok {
				t.Fatalf("DecodeTransferRequest(%q) error %T %v, want a *RejectError", data, err, err)
			}
			return
		}
		tr := in.Transfer
		if tr.Amount == 0 || tr.Amount > MaxAmount || !ValidID(tr.Collection) || tr.From == tr.To {
			t.Fatalf("DecodeTransferRequest(%q) = %+v, out of range", data, tr)
		}
	})
}

// FuzzDecodeTradeRequest is the same for trades.
func FuzzDecodeTradeRequest(f *testing.F) {
	f.Add([]byte(`{"give":{"collection":"credits","assetId":"","amount":"5","from":"0x00000000000000000000000000000000000a11ce","to":"0x0000000000000000000000000000000000000b0b","nonce":"1","deadline":"2"},"take":{"collection":"badges","assetId":"x","amount":"1","from":"0x0000000000000000000000000000000000000b0b","to":"0x00000000000000000000000000000000000a11ce","nonce":"1","deadline":"2"}}`))
	f.Add([]byte(`{"give":{},"take":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeTradeRequest(data)
		if err != nil {
			if _, ok := err.(*RejectError); !ok {
				t.Fatalf("DecodeTradeRequest(%q) error %T %v, want a *RejectError", data, err, err)
			}
			return
		}
		if in.Trade.Give.From == in.Trade.Take.From {
			t.Fatalf("DecodeTradeRequest(%q): both legs from one owner", data)
		}
	})
}

func TestDecodeTransferRequestRejects(t *testing.T) {
	base := `"from":"0x00000000000000000000000000000000000a11ce","to":"0x0000000000000000000000000000000000000b0b","nonce":"1","deadline":"2"`
	tests := []struct {
		name string
		in   string
		want Reason
	}{
		{"unknown field", `{"intent":{"collection":"c","amount":"1",` + base + `},"x":1}`, ReasonMalformed},
		{"amount zero", `{"intent":{"collection":"c","amount":"0",` + base + `}}`, ReasonAmountRange},
		{"amount beyond int64", `{"intent":{"collection":"c","amount":"9223372036854775808",` + base + `}}`, ReasonAmountRange},
		{"amount overflows 64 bits", `{"intent":{"collection":"c","amount":"18446744073709551616",` + base + `}}`, ReasonMalformed},
		{"amount negative", `{"intent":{"collection":"c","amount":-5,` + base + `}}`, ReasonMalformed},
		{"amount fraction", `{"intent":{"collection":"c","amount":1.5,` + base + `}}`, ReasonMalformed},
		{"unique amount 2", `{"intent":{"collection":"c","assetId":"i","amount":"2",` + base + `}}`, ReasonAmountRange},
		{"bad collection", `{"intent":{"collection":"C!","amount":"1",` + base + `}}`, ReasonMalformed},
		{"wrong type", `{"intent":{"collection":5,"amount":"1",` + base + `}}`, ReasonMalformed},
		{"bad checksum", `{"intent":{"collection":"c","amount":"1","from":"0x00000000000000000000000000000000000A11ce","to":"0x0000000000000000000000000000000000000b0b","nonce":"1","deadline":"2"}}`, ReasonMalformed},
		{"signature too short", `{"intent":{"collection":"c","amount":"1",` + base + `},"signature":"0x1234"}`, ReasonSignatureEncoding},
		{"trailing data", `{"intent":{"collection":"c","amount":"1",` + base + `}} {}`, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTransferRequest([]byte(tc.in))
			re, ok := err.(*RejectError)
			if !ok || re.Reason != tc.want {
				t.Fatalf("DecodeTransferRequest(%q) = %v, want reason %q", tc.in, err, tc.want)
			}
		})
	}
}
