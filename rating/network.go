package rating

// Neutron resource types priced per hour of existence.
const (
	FloatingIPType = "os.neutron.floatingip"
	RouterType     = "os.neutron.router"
)

func init() {
	Register(FloatingIPType, func(s Spec) (Rule, error) { return newHourly(s, "Floating IP") })
	Register(RouterType, func(s Spec) (Rule, error) { return newHourly(s, "Router") })
}

// HourlySpec prices a resource per hour of existence (a floating IP, a router).
//
//	price_per_hour: "0.005"
//	granularity: hour
type HourlySpec struct {
	PricePerHour *Pricing    `yaml:"price_per_hour"`
	Granularity  Granularity `yaml:"granularity"`
}

func (s *HourlySpec) check(c *checker) {
	required(c, s.PricePerHour, "price_per_hour")
	s.Granularity.check(c, "granularity")
}

type hourly struct {
	spec HourlySpec
	noun string
}

func newHourly(s Spec, noun string) (Rule, error) {
	var spec HourlySpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	return &hourly{spec: spec, noun: noun}, nil
}

func (r *hourly) Measure(dst []Measure, u Usage) ([]Measure, error) {
	m, err := timed(r.spec.PricePerHour, r.spec.Granularity, one, secondsPerHour, u.Range.Seconds(), "hour", r.noun, r.noun)
	return append(dst, m), err
}
