package snmp

import (
	"encoding/hex"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
	"github.com/reconmon/recon/runtime/sample"
)

// TypeName returns the SNMP type name kept in the `type` label.
func TypeName(t gosnmp.Asn1BER) string {
	switch t {
	case gosnmp.Integer:
		return "Integer32"
	case gosnmp.OctetString:
		return "OctetString"
	case gosnmp.ObjectIdentifier:
		return "ObjectIdentifier"
	case gosnmp.IPAddress:
		return "IpAddress"
	case gosnmp.Counter32:
		return "Counter32"
	case gosnmp.Gauge32:
		return "Gauge32"
	case gosnmp.TimeTicks:
		return "TimeTicks"
	case gosnmp.Opaque:
		return "Opaque"
	case gosnmp.Counter64:
		return "Counter64"
	case gosnmp.Uinteger32:
		return "Unsigned32"
	case gosnmp.OpaqueFloat:
		return "Float"
	case gosnmp.OpaqueDouble:
		return "Double"
	case gosnmp.Boolean:
		return "Boolean"
	case gosnmp.BitString:
		return "Bits"
	case gosnmp.Null:
		return "Null"
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// Missing reports whether a varbind holds one of the exception values
// (noSuchObject, noSuchInstance, endOfMibView) rather than a value.
func Missing(v gosnmp.SnmpPDU) bool {
	switch v.Type {
	case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null:
		return true
	}
	return false
}

// SetValue stores a varbind's value in r: numbers in Value, printable
// octet strings, OIDs and addresses in Text, other octet strings as hex.
func SetValue(r *sample.Row, v gosnmp.SnmpPDU) {
	switch v.Type {
	case gosnmp.Integer, gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks,
		gosnmp.Counter64, gosnmp.Uinteger32:
		r.Value, r.HasValue = toFloat(v.Value), true
	case gosnmp.OpaqueFloat:
		if f, ok := v.Value.(float32); ok {
			r.Value, r.HasValue = float64(f), true
		}
	case gosnmp.OpaqueDouble:
		if f, ok := v.Value.(float64); ok {
			r.Value, r.HasValue = f, true
		}
	case gosnmp.Boolean:
		if b, ok := v.Value.(bool); ok {
			r.HasValue = true
			if b {
				r.Value = 1
			}
		}
	case gosnmp.OctetString, gosnmp.Opaque, gosnmp.BitString:
		if b, ok := v.Value.([]byte); ok {
			r.Text, r.HasText = OctetText(b), true
		}
	case gosnmp.ObjectIdentifier, gosnmp.IPAddress:
		if s, ok := v.Value.(string); ok {
			r.Text, r.HasText = trimDot(s), true
		}
	}
}

// ValueString renders a varbind's value as a label value.
func ValueString(v gosnmp.SnmpPDU) string {
	var r sample.Row
	SetValue(&r, v)
	switch {
	case r.HasText:
		return r.Text
	case r.HasValue:
		return formatNumber(r.Value)
	}
	return ""
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case uint:
		return float64(n)
	case uint32:
		return float64(n)
	case uint64:
		return float64(n)
	}
	return float64(gosnmp.ToBigInt(v).Int64())
}

// OctetText returns b as text when it is printable UTF-8, else as
// colon-free lowercase hex ("0x00a1ff").
func OctetText(b []byte) string {
	if utf8.Valid(b) && printable(b) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

func printable(b []byte) bool {
	for _, c := range string(b) {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
		if c == 0x7f {
			return false
		}
	}
	return true
}

func trimDot(oid string) string {
	if len(oid) > 0 && oid[0] == '.' {
		return oid[1:]
	}
	return oid
}
