import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type Series = { label: string; values: number[]; color: string };

/** A line chart of daily counts (uPlot draws on a canvas; the table
 * next to it carries the same numbers for screen readers). */
export function DailyChart(props: { days: string[]; series: Series[]; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // Canvas text takes no CSS: axes get the page's text colour (light or dark).
    const ink = getComputedStyle(el).color;
    const x = props.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const data: uPlot.AlignedData = [x, ...props.series.map((s) => s.values)];
    const plot = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height: 260,
        series: [
          {},
          ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: x.length < 3 } })),
        ],
        axes: [
          { stroke: ink, grid: { stroke: "rgba(128,128,128,0.2)" } },
          { stroke: ink, grid: { stroke: "rgba(128,128,128,0.2)" } },
        ],
        scales: { x: { time: true } },
      },
      data,
      el,
    );
    const resize = () => plot.setSize({ width: Math.max(320, el.clientWidth), height: 260 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [props.days, props.series]);
  return <div ref={box} className="chart" role="img" aria-label={props.title} />;
}
