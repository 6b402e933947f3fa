package rating

import (
	"fmt"
)

// Resource types priced by size.
const (
	VolumeType   = "os.cinder.volume"
	SnapshotType = "os.cinder.snapshot"
	ImageType    = "os.glance.image"
)

func init() {
	Register(VolumeType, func(s Spec) (Rule, error) { return newVolume(s, "Volume") })
	Register(SnapshotType, func(s Spec) (Rule, error) { return newVolume(s, "Volume snapshot") })
	Register(ImageType, newImage)
}

// VolumeSpec prices Cinder volumes (and snapshots) per GB-hour from the record attribute "size"
// (GB), optionally per volume type (attribute "volume_type"). Prices are Pricings.
//
//	price_per_gb_hour: "0.00015"
//	volume_types: {ssd: "0.00030"}
//	granularity: second
type VolumeSpec struct {
	PricePerGBHour *Pricing            `yaml:"price_per_gb_hour"`
	VolumeTypes    map[string]*Pricing `yaml:"volume_types"`
	Granularity    Granularity         `yaml:"granularity"`
}

func (s *VolumeSpec) check(c *checker) {
	s.PricePerGBHour.check(c, "price_per_gb_hour")
	for _, vt := range sortedKeys(s.VolumeTypes) {
		required(c, s.VolumeTypes[vt], "volume_types."+vt)
	}
	if s.PricePerGBHour == nil && len(s.VolumeTypes) == 0 {
		c.add(0, "price_per_gb_hour", "required (or volume_types)")
	}
	s.Granularity.check(c, "granularity")
}

type volume struct {
	spec  VolumeSpec
	noun  string
	label map[string]string // volume type → label
}

func newVolume(s Spec, noun string) (Rule, error) {
	var spec VolumeSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	r := &volume{spec: spec, noun: noun, label: map[string]string{"": noun + " storage"}}
	for vt := range spec.VolumeTypes {
		r.label[vt] = noun + " storage " + vt
	}
	return r, nil
}

func (r *volume) Measure(dst []Measure, u Usage) ([]Measure, error) {
	size, err := attrDecimal(u, "size")
	if err != nil {
		return dst, err
	}
	p := r.spec.PricePerGBHour
	vt := u.Attributes["volume_type"]
	label := r.label[""]
	if tp, ok := r.spec.VolumeTypes[vt]; ok {
		p, label = tp, r.label[vt]
	}
	if p == nil {
		return dst, fmt.Errorf("%s %s: no price for volume type %q", u.ResourceType, u.ResourceID, vt)
	}
	desc := label // a total's lines use the label: build a piece's description only for flat
	if p.Model == Flat {
		desc = r.noun + " " + size.String() + " GB"
		if vt != "" {
			desc += " " + vt
		}
	}
	m, err := timed(p, r.spec.Granularity, size, secondsPerHour, u.Range.Seconds(), "GB-hour", label, desc)
	return append(dst, m), err
}

// ImageSpec prices Glance images per GiB-hour from the record attribute "size" in bytes.
//
//	price_per_gb_hour: "0.00010"
type ImageSpec struct {
	PricePerGBHour *Pricing    `yaml:"price_per_gb_hour"`
	Granularity    Granularity `yaml:"granularity"`
}

func (s *ImageSpec) check(c *checker) {
	required(c, s.PricePerGBHour, "price_per_gb_hour")
	s.Granularity.check(c, "granularity")
}

type image struct{ spec ImageSpec }

func newImage(s Spec) (Rule, error) {
	var spec ImageSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	return &image{spec: spec}, nil
}

func (r *image) Measure(dst []Measure, u Usage) ([]Measure, error) {
	bytes, err := attrDecimal(u, "size")
	if err != nil {
		return dst, err
	}
	gib, err := bytes.Quo(bytesPerGiB)
	if err != nil {
		return dst, fmt.Errorf("%s %s: size: %w", u.ResourceType, u.ResourceID, err)
	}
	m, err := timed(r.spec.PricePerGBHour, r.spec.Granularity, bytes, secondsPerHourGiB, u.Range.Seconds(), "GiB-hour",
		"Image storage", "Image "+gib.Round(2).Trim(0).String()+" GiB")
	return append(dst, m), err
}
