package rating

// FloatingIPType prices Neutron floating IPs.
const FloatingIPType = "os.neutron.floatingip"

func init() { Register(FloatingIPType, newFloatingIP) }

// FloatingIPSpec prices a floating IP per hour, billed to the second.
//
//	price_per_hour: "0.005"
type FloatingIPSpec struct {
	PricePerHour Price `yaml:"price_per_hour"`
}

type floatingIP struct{ spec FloatingIPSpec }

func newFloatingIP(s Spec) (Rule, error) {
	var spec FloatingIPSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	return &floatingIP{spec: spec}, nil
}

func (r *floatingIP) Price(u Usage) (Charge, error) {
	return perHour(r.spec.PricePerHour.Decimal, one, u.Range.Seconds(), "hour", "Floating IP")
}
