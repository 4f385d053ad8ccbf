// Bundled by esbuild into an IIFE for the browser tests: the page then calls `new OpenAI(...)`.
import OpenAI from "openai";

window.OpenAI = OpenAI;
